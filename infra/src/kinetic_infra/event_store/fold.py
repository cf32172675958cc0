"""Rebuilding an aggregate's state from its recorded events (the "fold" of decide/evolve)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import reduce
from typing import TypeVar

from pydantic import BaseModel

from kinetic_infra.event_store.model import RecordedEvent

S = TypeVar("S")
E = TypeVar("E", bound=BaseModel)


def fold(recorded: Iterable[RecordedEvent], event_types: Mapping[str, type[E]],
         evolve: Callable[[S, E], S], initial: S) -> S:
    return reduce(evolve, (event_types[r.type].model_validate(r.data) for r in recorded), initial)
