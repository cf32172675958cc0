"""The ends and precision of each outcome-measure score (CLINICAL.md §1), so a number the
therapist types into a session log is one the instrument can give, and a drafted target one
the patient can reach.

A session's quick measures (``{"nprs": 3, "psfs_01": 6}``) become criterion results and stall
readings as they are: an LEFS of 900 or an NPRS of −4 would meet discharge and calm criteria
that no patient met. Assessment scores its questionnaires from the answers and cannot produce
such numbers; a quick measure skips that scoring, so its range is checked here.

Plan does not import assessment (services share only ``kinetic_contracts``), so the ranges are
those of assessment's catalog (``assessment/domain/measures/catalog.py``) restated, keyed by the
score's key as ``outcome.measured`` carries it. They are facts of the instruments, not clinic
configuration, so they are not part of the organization's rule set. A score the catalog gains
is logged as a quick measure only once it is added here; tests/contracts/test_measure_scales.py
fails until the two agree. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from kinetic_contracts.problems import RuleViolationError


class UnknownScoreError(RuleViolationError):
    type_slug = "unknown-measure-score"
    title = "No outcome measure reports a score under this key"


class ScoreOutOfRangeError(RuleViolationError):
    type_slug = "score-out-of-range"
    title = "The value is outside the measure's scale"


class ScorePrecisionError(RuleViolationError):
    type_slug = "score-precision"
    title = "The value has more decimals than the measure's score"


class Scale(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    low: float
    high: float
    decimals: int  # as the instrument reports it: an NPRS is a whole number, an ODI % has one

    def holds(self, value: float) -> bool:
        # False for NaN as well: it compares as neither.
        return self.low <= value <= self.high

    def steps(self, value: float) -> bool:
        """Whether the value is one the score can take: no more decimals than it has."""
        scaled = value * 10 ** self.decimals
        return abs(scaled - round(scaled)) < 1e-6

    def clamp(self, value: float) -> float:
        return min(max(value, self.low), self.high)


def _same(low: float, high: float, decimals: int, *keys: str) -> dict[str, Scale]:
    return dict.fromkeys(keys, Scale(low=low, high=high, decimals=decimals))


SCALES: Mapping[str, Scale] = MappingProxyType({
    **_same(0, 10, 0, "nprs", "psfs_01", "psfs_02", "psfs_03", "psfs_04", "psfs_05"),
    **_same(0, 10, 1, "psfs"),  # the mean of the activities
    **_same(0, 80, 0, "lefs"),
    **_same(0, 50, 1, "ndi"),
    **_same(0, 100, 1, "odi", "ndi_pct", "quickdash", "koos_pain", "koos_symptoms", "koos_adl",
            "koos_sport_rec", "koos_qol", "spadi", "spadi_pain", "spadi_disability"),
    **_same(0, 100, 0, "visa_a", "visa_p"),
    **_same(-7, 7, 0, "groc"),
    **_same(17, 68, 0, "tsk17"),
})


def check_score(key: str, value: float) -> None:
    """Refuse (422) a score key no measure reports (a typo would otherwise be kept as a
    reading nothing tracks), a value outside its scale and one with more decimals than the
    score has (an NPRS of 3.5 is no reading the instrument gives)."""
    scale = SCALES.get(key)
    if scale is None:
        raise UnknownScoreError(f"no outcome measure reports a score {key!r}", score=key,
                                known=sorted(SCALES))
    if not scale.holds(value):
        raise ScoreOutOfRangeError(
            f"{key} is scored {scale.low:g} to {scale.high:g}; {value!r} is outside it",
            # A non-finite value as text: problem+json is JSON, which has no NaN.
            score=key, value=value if math.isfinite(value) else repr(value), low=scale.low,
            high=scale.high)
    if not scale.steps(value):
        raise ScorePrecisionError(
            f"{key} is scored " + ("in whole numbers" if scale.decimals == 0 else
                                   f"to {scale.decimals} decimal(s)") + f"; {value!r} is not",
            score=key, value=value, decimals=scale.decimals)
