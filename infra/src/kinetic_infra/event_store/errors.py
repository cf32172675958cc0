"""Event-store failures the command layer reacts to."""

from __future__ import annotations


class WrongExpectedVersionError(Exception):
    """Another writer appended to the stream first. The command layer reloads and retries."""

    def __init__(self, stream: str, expected: int | None, actual: int | None = None) -> None:
        super().__init__(f"stream {stream}: expected version {expected}, found {actual}")
        self.stream = stream
        self.expected = expected
        self.actual = actual
