"""Change against baseline, read in the measure's good direction. Pure.

The rule (CLINICAL.md §0, §3.2 noise guard):
- improvement = current − baseline for a higher_better measure, baseline − current for a
  lower_better one, so a positive number is always better;
- the MCID is met by the absolute MCID OR the relative one where the measure has it (NPRS:
  2 points or 30% of baseline). "Or" means the smaller of the two bars: min(mcid,
  mcid_pct × |baseline|);
- noise guard: that bar is never below the MDC, since a change inside measurement error is
  not a change (NDI: MCID 7.5 but MDC 10.2, so 10.2 is needed). A relative MCID that works
  out below the MDC (ODI 30% of a baseline of 20 = 6 < MDC 10) is lifted the same way;
- possibly_noise: |change| below the MDC (never set where no MDC is published);
- deteriorated: worse by at least max(MCID, MDC) — the improvement bar used symmetrically
  (CLINICAL.md §7: deterioration MCIDs are rarely studied); the relative MCID is not used
  for worsening.
Values are compared as decimals at the precision entered, so 5.7 − 3.7 is exactly 2.
"""

from __future__ import annotations

import math
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from assessment.domain.measures.definition import (
    Direction,
    MeasureDefinition,
    MeasureThresholds,
)
from assessment.domain.measures.errors import (
    NotComparedToBaselineError,
    ScoreOutOfRangeError,
    UnknownScoreError,
)


class Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    measure: str
    score: str | None  # the score compared, when the caller named it
    direction: Direction
    baseline: float
    current: float
    raw: float  # current − baseline
    improvement: float  # in the good direction: positive = better, negative = worse
    relative_pct: float | None  # improvement as % of the baseline; None for a baseline of 0
    mcid: float | None  # as given (None: no thresholds, e.g. TSK-17)
    mdc: float | None
    threshold: float | None  # the improvement that counted as important here
    passed_mcid: bool
    possibly_noise: bool
    deteriorated: bool


def change(definition: MeasureDefinition, thresholds: MeasureThresholds | None,
           baseline: float, current: float, *, score: str | None = None) -> Change:
    """Compare two scores of one measure. ``thresholds`` are the organization's (or the
    catalog's defaults, ``thresholds_for``); None compares without judging importance.
    Name ``score`` (a KOOS subscale, "ndi_pct", a PSFS activity) to check the values
    against that score's range; without it, the measure's widest range is used."""
    if not definition.compare_to_baseline:
        raise NotComparedToBaselineError(
            f"{definition.name} already rates change; it is read on its own",
            measure=definition.code)
    _check_range(definition, score, baseline, current)

    b, c = _dec(baseline), _dec(current)
    raw = c - b
    improvement = raw if definition.direction == "higher_better" else -raw
    relative = improvement / abs(b) * 100 if b != 0 else None

    mcid = mdc = threshold = None
    passed = noise = worse = False
    if thresholds is not None:
        mcid, mdc = _dec(thresholds.mcid), _opt(thresholds.mdc)
        bar = mcid
        if thresholds.mcid_pct is not None and b != 0:
            bar = min(bar, abs(b) * _dec(thresholds.mcid_pct) / 100)
        real = max(mcid, mdc) if mdc is not None else mcid
        threshold = max(bar, mdc) if mdc is not None else bar
        passed = improvement >= threshold
        noise = mdc is not None and abs(raw) < mdc
        worse = improvement <= -real

    return Change(
        measure=definition.code, score=score, direction=definition.direction,
        baseline=baseline, current=current, raw=float(raw), improvement=float(improvement),
        relative_pct=None if relative is None else round(float(relative), 1),
        mcid=_float(mcid), mdc=_float(mdc), threshold=_float(threshold),
        passed_mcid=passed, possibly_noise=noise, deteriorated=worse)


def _check_range(definition: MeasureDefinition, score: str | None,
                 *values: float) -> None:
    if score is not None:
        spec = definition.score_spec(score)
        if spec is None:
            raise UnknownScoreError(f"{definition.code} reports no score {score!r}",
                                    measure=definition.code, score=score)
        low, high = spec.low, spec.high
    else:
        low = min(s.low for s in definition.scores)
        high = max(s.high for s in definition.scores)
    for v in values:
        if isinstance(v, bool) or not math.isfinite(v) or not low <= v <= high:
            raise ScoreOutOfRangeError(
                f"{definition.code}{'.' + score if score else ''}: {v!r} is outside "
                f"{low:g}–{high:g}", measure=definition.code, score=score)


def _dec(value: float) -> Decimal:
    # Through str: the number as written (3.7), not its binary expansion.
    return Decimal(str(value))


def _opt(value: float | None) -> Decimal | None:
    return None if value is None else _dec(value)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
