"""The local stack: real PostgreSQL, NATS JetStream and Temporal servers from PyPI packages.

Used by ``make run`` (fixed ports, one persistent data directory) and by the test suite
(free ports, a throw-away directory). Every server is a child process started and stopped
by PID; nothing here knows about any service's domain.
"""
