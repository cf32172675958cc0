"""Pass/fail against the organization's thresholds, and every index the evaluation stores.

Thresholds are `DEFAULT`s (CLINICAL.md §6) that an organization may override; the caller
passes the ones in force, so this module never reads configuration. An LSI is judged at the
one decimal it is stored with, so the record never shows 90.0 % next to "failed".
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from assessment.domain.findings.models import (
    Finding,
    HeelRaise,
    HopBattery,
    HopName,
    Mobility,
    MovementTest,
    ObjectiveFindings,
    SingleLegSquat,
    StrengthTest,
    YBalance,
)
from assessment.domain.findings.values import RATING_SCORE, SIDES, Rating, rounded
from kinetic_contracts.assessment.v1.events import FindingIndex

# Heel-raise between-day limits of agreement are about ±6 reps (S18): a change smaller than
# this may be measurement noise, not a real gain or loss.
HEEL_RAISE_NOISE_REPS = 7

# The battery passes only when these three were all hopped (CLINICAL.md §5 discharge); the
# timed hop counts when it was recorded.
REQUIRED_HOPS: tuple[HopName, ...] = ("single_hop", "triple_hop", "crossover_hop")


class FindingThresholds(BaseModel):
    """CLINICAL.md §6 `DEFAULT`s; an organization may override each."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lsi_pass: float = Field(default=90, gt=0, le=200, description="LSI % at or above passes")
    ybal_ant_cm: float = Field(default=4, gt=0, le=50,
                               description="Y-balance anterior asymmetry below this passes")
    heel_raise_min: int = Field(default=25, ge=0, le=200,
                                description="Heel raises the involved side must reach")


DEFAULT_THRESHOLDS = FindingThresholds()


# -- verdicts ------------------------------------------------------------------------------

def lsi_passes(lsi_pct: float, thresholds: FindingThresholds = DEFAULT_THRESHOLDS) -> bool:
    return rounded(lsi_pct, 1) >= thresholds.lsi_pass


def bilaterally_at_least(test: SingleLegSquat | MovementTest, floor: Rating) -> bool:
    """Both sides rated, and each at least ``floor``. A side not rated is not evidence."""
    ratings = [test.rating(side) for side in SIDES]
    return all(r is not None and RATING_SCORE[r] >= RATING_SCORE[floor] for r in ratings)


def bilaterally_good(test: SingleLegSquat | MovementTest) -> bool:
    """The SLS criterion (CLINICAL.md §2): "good" on both sides (for a squat, on all five
    items of each side)."""
    return bilaterally_at_least(test, "good")


def strength_passes(test: StrengthTest, thresholds: FindingThresholds = DEFAULT_THRESHOLDS
                    ) -> bool:
    return lsi_passes(test.lsi(), thresholds)


def hop_battery_passes(battery: HopBattery,
                       thresholds: FindingThresholds = DEFAULT_THRESHOLDS) -> bool:
    """LSI >= the threshold on every hop recorded, and the single, triple and crossover hops
    all recorded: a battery with a hop missing has not shown symmetry on that hop."""
    recorded = battery.recorded()
    return (all(h in recorded for h in REQUIRED_HOPS)
            and all(lsi_passes(battery.lsi(h), thresholds) for h in recorded))


def y_balance_passes(test: YBalance, thresholds: FindingThresholds = DEFAULT_THRESHOLDS
                     ) -> bool:
    return rounded(test.anterior_asymmetry_cm, 1) < thresholds.ybal_ant_cm


def heel_raise_passes(test: HeelRaise, thresholds: FindingThresholds = DEFAULT_THRESHOLDS
                      ) -> bool:
    """LSI >= the threshold AND the involved side reaches the minimum: symmetric but weak
    (both calves at 15) does not pass."""
    return lsi_passes(test.lsi(), thresholds) and test.involved_reps >= thresholds.heel_raise_min


def heel_raise_change_is_noise(before_reps: int, after_reps: int) -> bool:
    """A change of fewer than HEEL_RAISE_NOISE_REPS reps may be measurement error."""
    return abs(after_reps - before_reps) < HEEL_RAISE_NOISE_REPS


# -- indices -------------------------------------------------------------------------------

def compute(findings: ObjectiveFindings,
            thresholds: FindingThresholds = DEFAULT_THRESHOLDS) -> list[FindingIndex]:
    """Every index of every finding, in the order the findings were entered. Each finding
    yields at least one index, so the finding ids present here are exactly those recorded.
    ``passed`` is set where a threshold applies and None where none does. Raises
    UndefinedSymmetryIndexError when a reference side is 0."""
    out: list[FindingIndex] = []
    for finding in findings.all():
        out.extend(_indices(finding, findings.body_mass_kg, thresholds))
    return out


def _index(finding: Finding, index: str, value: float, unit: str,
           passed: bool | None = None) -> FindingIndex:
    return FindingIndex(finding_id=finding.finding_id, index=index, value=value, unit=unit,
                        passed=passed)


def _indices(finding: Finding, body_mass_kg: float | None,
             thresholds: FindingThresholds) -> list[FindingIndex]:
    match finding:
        case SingleLegSquat() | MovementTest():
            return _movement(finding)
        case Mobility():
            return [_index(finding, "side_difference", rounded(finding.difference, 1),
                           finding.unit)]
        case StrengthTest():
            return _strength(finding, body_mass_kg, thresholds)
        case HopBattery():
            return _hops(finding, thresholds)
        case YBalance():
            composite = [_index(finding, f"composite_{side}_pct", rounded(value, 1), "%")
                         for side in SIDES
                         if (value := finding.composite_pct(side)) is not None]
            return [_index(finding, "anterior_asymmetry_cm",
                           rounded(finding.anterior_asymmetry_cm, 1), "cm",
                           y_balance_passes(finding, thresholds)), *composite]
        case HeelRaise():
            lsi = finding.lsi()
            return [_index(finding, "lsi_pct", rounded(lsi, 1), "%", lsi_passes(lsi, thresholds)),
                    _index(finding, "involved_reps", finding.involved_reps, "reps",
                           finding.involved_reps >= thresholds.heel_raise_min)]
        case _:
            raise AssertionError(finding)


def _movement(test: SingleLegSquat | MovementTest) -> list[FindingIndex]:
    # Ratings as numbers (poor 0, fair 1, good 2) so a criterion can ask "fair or better".
    rated = [(side, r) for side in SIDES if (r := test.rating(side)) is not None]
    sides = [_index(test, f"{side}_rating", RATING_SCORE[r], "rating", r == "good")
             for side, r in rated]
    worst = min(RATING_SCORE[r] for _, r in rated)
    return [*sides, _index(test, "bilateral_rating", worst, "rating", bilaterally_good(test))]


def _strength(test: StrengthTest, body_mass_kg: float | None,
              thresholds: FindingThresholds) -> list[FindingIndex]:
    out = [_index(test, f"best_{side}", test.best(side), test.unit) for side in SIDES]
    for side in SIDES:
        if (torque := test.torque_nm(side)) is not None:
            out.append(_index(test, f"torque_{side}_nm", rounded(torque, 1), "N·m"))
    for side in SIDES:
        if (normalised := test.torque_nm_per_kg(side, body_mass_kg)) is not None:
            out.append(_index(test, f"torque_{side}_nm_per_kg", rounded(normalised, 2),
                              "N·m/kg"))
    lsi = test.lsi()
    out.append(_index(test, "lsi_pct", rounded(lsi, 1), "%", lsi_passes(lsi, thresholds)))
    return out


def _hops(battery: HopBattery, thresholds: FindingThresholds) -> list[FindingIndex]:
    lsis = {hop: battery.lsi(hop) for hop in battery.recorded()}
    out = [_index(battery, f"{hop}_lsi_pct", rounded(lsi, 1), "%", lsi_passes(lsi, thresholds))
           for hop, lsi in lsis.items()]
    # The weakest hop stands for the battery; its verdict also needs the required hops done.
    out.append(_index(battery, "battery_lsi_pct", rounded(min(lsis.values()), 1), "%",
                      hop_battery_passes(battery, thresholds)))
    return out

