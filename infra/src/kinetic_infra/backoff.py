"""Waiting out a failure: a pause that doubles while failures repeat, up to a cap, and starts
over after a success; and a sleep that ends early when the process is asked to stop. The
long-running loops (relay, consumers, a service's dispatcher) all wait this way, so none
hammers a server that is away nor keeps a stopping process waiting."""

from __future__ import annotations

import asyncio


class Backoff:
    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        """The pause to take now; the one after it is twice as long, up to the cap."""
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
