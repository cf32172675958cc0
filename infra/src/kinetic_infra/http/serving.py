"""Running an ASGI app under uvicorn, alone on its port or as one of several processes that
share it."""

from __future__ import annotations

import socket
from typing import Any


def serve(app: Any, host: str, port: int, *, reuse_port: bool, log_level: str = "info") -> None:
    """Serve ``app`` until stopped. With ``reuse_port``, replicas on one machine each bind the
    same port (SO_REUSEPORT) and the kernel hands each new connection to one of them, so no
    proxy stands in between."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    if not reuse_port:
        uvicorn.Server(config).run()
        return
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    uvicorn.Server(config).run(sockets=[sock])
