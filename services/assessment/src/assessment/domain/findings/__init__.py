"""Objective findings of an evaluation (CLINICAL.md §2): typed, validated inputs and the
indices computed from them (limb symmetry, asymmetry, composite, torque), each under the
``finding_id`` that clinical reasoning cites. Pure: no clock, no I/O, no configuration read.
"""

from assessment.domain.findings.compute import (
    DEFAULT_THRESHOLDS,
    HEEL_RAISE_NOISE_REPS,
    REQUIRED_HOPS,
    FindingThresholds,
    bilaterally_at_least,
    bilaterally_good,
    compute,
    heel_raise_change_is_noise,
    heel_raise_passes,
    hop_battery_passes,
    lsi_passes,
    strength_passes,
    y_balance_passes,
)
from assessment.domain.findings.errors import (
    DuplicateFindingError,
    ImplausibleFindingError,
    InvalidFindingError,
    UndefinedSymmetryIndexError,
)
from assessment.domain.findings.models import (
    HOPS,
    Finding,
    HeelRaise,
    HopBattery,
    HopName,
    Mobility,
    Movement,
    MovementTest,
    ObjectiveFindings,
    SingleLegSquat,
    SquatSide,
    StrengthTest,
    YBalance,
)
from assessment.domain.findings.values import (
    KGF_TO_N,
    Rating,
    Side,
    SidePair,
    display_percent,
    limb_symmetry_index,
)

__all__ = [
    "DEFAULT_THRESHOLDS", "HEEL_RAISE_NOISE_REPS", "HOPS", "KGF_TO_N", "REQUIRED_HOPS",
    "DuplicateFindingError", "Finding", "FindingThresholds", "HeelRaise", "HopBattery",
    "HopName", "ImplausibleFindingError", "InvalidFindingError", "Mobility", "Movement",
    "MovementTest", "ObjectiveFindings", "Rating", "Side", "SidePair", "SingleLegSquat",
    "SquatSide", "StrengthTest", "UndefinedSymmetryIndexError", "YBalance",
    "bilaterally_at_least", "bilaterally_good", "compute", "display_percent",
    "heel_raise_change_is_noise", "heel_raise_passes", "hop_battery_passes",
    "limb_symmetry_index", "lsi_passes", "strength_passes", "y_balance_passes",
]
