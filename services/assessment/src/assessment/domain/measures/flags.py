"""Flags a score raises by its level alone (TSK-17 > 37: high kinesiophobia; GROC ≥ +3:
an important improvement). Pure. The cut-offs are defaults (CLINICAL.md §6 ``tsk_high``), so
the organization's values are passed in and win."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping

from assessment.domain.measures.definition import MeasureDefinition
from assessment.domain.measures.scoring import Score

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def raised_flags(definition: MeasureDefinition, score: Score,
                 cutoffs: Mapping[str, float] | None = None) -> tuple[str, ...]:
    """The codes of the cut-offs this score crosses. ``cutoffs`` overrides a threshold by
    cut-off code (e.g. {"high_kinesiophobia": 40})."""
    overrides = dict(cutoffs or {})
    known = {c.code for s in definition.scores for c in s.cutoffs}
    if unknown := set(overrides) - known:
        # A misspelt override would silently leave the default in force.
        raise ValueError(f"{definition.code} has no cut-off {sorted(unknown)}")
    raised: list[str] = []
    for spec in definition.scores:
        value = score.values.get(spec.code)
        if value is None:
            continue
        raised += [c.code for c in spec.cutoffs
                   if _OPS[c.op](value, overrides.get(c.code, c.threshold))]
    return tuple(raised)
