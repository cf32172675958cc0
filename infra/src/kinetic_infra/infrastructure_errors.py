"""Telling "the platform is away" apart from "this message or handler is wrong".

A PostgreSQL failover, a NATS leader election or a Temporal restart fails every message in
flight for a few seconds, through no fault of theirs: such a failure must be waited out, not
counted against the message (inbox/consumer.py dead-letters a message only for failures of
its own).
"""

from __future__ import annotations

import sys

import asyncpg
import nats.errors
from sqlalchemy.exc import DBAPIError

# PostgreSQL or the connection to it is away: refused, dropped, shutting down, starting up.
_POSTGRES = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
             asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
             asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError,
             asyncpg.exceptions.InternalClientError)

# NATS is away or reconnecting (its time-outs are TimeoutErrors already).
_NATS = (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
         nats.errors.ConnectionDrainingError, nats.errors.NoServersError,
         nats.errors.StaleConnectionError, nats.errors.OutboundBufferLimitError)

# OSErrors that are about files, not the network: a handler's bug, which waiting never fixes.
_FILE_SYSTEM = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)


def is_transient_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says PostgreSQL, NATS or Temporal is unreachable for
    now, so that the same work should simply be tried again later."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage(current):
            return True
        # SQLAlchemy keeps the driver's error in ``orig``; its asyncpg adapter raises its own
        # error ``from`` asyncpg's. ``__context__`` is not followed: an error raised while
        # handling an outage is not necessarily one.
        current = getattr(current, "orig", None) or current.__cause__
    return False


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, _POSTGRES + _NATS):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, _FILE_SYSTEM):
        # Refused, reset, timed out, unreachable, DNS, asyncio's "Multiple exceptions" when
        # no address of a host answers (TimeoutError and ConnectionError are OSErrors).
        return True
    # Only a process that imported Temporal's client can get its errors, and importing it
    # here would cost every other process a quarter of a second at start-up.
    temporal = sys.modules.get("temporalio.service")
    if temporal is not None and isinstance(exc, temporal.RPCError):
        return exc.status in (temporal.RPCStatusCode.UNAVAILABLE,
                              temporal.RPCStatusCode.DEADLINE_EXCEEDED)
    return False
