"""The webhook dispatcher goes on whatever one round or one delivery does: a dispatcher
that stopped would deliver nothing more while its process looked alive. The failures are
injected; delivery itself is proven end to end in tests/e2e/test_partners.py."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx

from partners.adapters import delivery


class _Heads:
    """The read the dispatcher starts a round with: two due lanes."""

    def __init__(self, heads: list[dict]) -> None:
        self.heads = heads

    @asynccontextmanager
    async def read(self):
        rows = SimpleNamespace(mappings=lambda: self.heads)

        async def execute(*_args, **_kwargs):
            return rows

        yield SimpleNamespace(execute=execute)


async def test_a_delivery_that_cannot_be_tried_does_not_keep_the_others_from_going_out(
        monkeypatch):
    tried = []

    async def attempt(_db, _client, head):
        if head["delivery_id"] == 1:
            raise ValueError("the partner's secret cannot be read")
        tried.append(head["delivery_id"])
        return 1

    monkeypatch.setattr(delivery, "_try", attempt)
    heads = _Heads([{"delivery_id": 1}, {"delivery_id": 2}])
    async with httpx.AsyncClient() as client:
        assert await delivery.dispatch_once(heads, client) == 1
    assert tried == [2]


async def test_a_round_that_fails_is_followed_by_another(monkeypatch):
    """PostgreSQL away for a round (or two): the dispatcher pauses and goes on."""
    stop, rounds = asyncio.Event(), []

    async def round_(_db, _client):
        rounds.append(len(rounds))
        if len(rounds) <= 2:
            raise OSError("connection refused")
        stop.set()
        return 0

    monkeypatch.setattr(delivery, "dispatch_once", round_)
    monkeypatch.setattr(delivery, "FAILURE_PAUSE", 0.01)
    await asyncio.wait_for(delivery.run(SimpleNamespace(db=None), stop), 5)
    assert rounds == [0, 1, 2]
