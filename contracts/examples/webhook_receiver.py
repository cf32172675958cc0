"""A partner's webhook receiver in a page of Python: verify, de-duplicate, acknowledge.

    python webhook_receiver.py --secret whsec_... --port 8080

It needs only ``kinetic-contracts`` (``pip install kinetic-contracts``). Every verified event
is printed as one JSON line; a repeat of an event id already seen is acknowledged and not
printed again (Kinetic delivers at least once); a call that does not verify gets 401, and
Kinetic will try it again later.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kinetic_contracts.webhooks import WebhookVerificationError, verify


def handler(secret: str) -> type[BaseHTTPRequestHandler]:
    seen: set[str] = set()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                event = verify(secret, body, {k.lower(): v for k, v in self.headers.items()})
            except (WebhookVerificationError, ValueError):
                self.send_response(401)
                self.end_headers()
                return
            if str(event.id) not in seen:
                seen.add(str(event.id))
                print(json.dumps({"id": str(event.id), "type": event.type,
                                  "data": event.data}), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass  # stdout carries the events only

    return Receiver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the partner's whsec_ secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), handler(args.secret))
    print(f"listening on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
