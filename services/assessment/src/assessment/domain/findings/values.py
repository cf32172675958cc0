"""The small vocabulary every finding shares: sides, ratings, units, the range check and
the limb symmetry index. Arithmetic goes through ``Decimal`` built from the number as typed,
so 16.2 / 18.0 is exactly 90 % and a threshold is never missed by a float's last bit."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from assessment.domain.findings.errors import (
    ImplausibleFindingError,
    InvalidFindingError,
    UndefinedSymmetryIndexError,
)

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")
Rating = Literal["good", "fair", "poor"]
RATING_SCORE: dict[str, int] = {"poor": 0, "fair": 1, "good": 2}  # so "fair or better" is >= 1
Direction = Literal["higher_better", "lower_better"]

KGF_TO_N = 9.80665  # standard gravity: 1 kgf is exactly this many newtons
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
FINDING_ID = re.compile(r"^[a-z][a-z0-9_]*(:[a-z0-9_]+)*$")
FINDING_ID_MAX = 120


def other(side: Side) -> Side:
    return "right" if side == "left" else "left"


def dec(value: float | int) -> Decimal:
    # repr is the shortest string that reads back as the same float: 14.2 -> Decimal("14.2").
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def rounded(value: Decimal | float, places: int) -> float:
    """Half-up to ``places`` decimals (what a clinician expects: 78.85 -> 78.9, not 78.8)."""
    exact = value if isinstance(value, Decimal) else dec(value)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def display_percent(value: float) -> int:
    """A percentage as shown to people: whole numbers, half up (78.9 -> 79)."""
    return int(dec(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class SidePair(BaseModel):
    """One number per side, for the tests that record several (each hop, each reach)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    left: float
    right: float

    def of(self, side: Side) -> float:
        return self.left if side == "left" else self.right


def check_range(value: float, *, finding_id: str, field: str, low: float, high: float,
                unit: str, low_exclusive: bool = False) -> None:
    """Refuse a value that cannot be a measurement (negative, zero time, a 20 m hop…).
    NaN fails both comparisons, so it is refused too."""
    above = value > low if low_exclusive else value >= low
    if above and value <= high:
        return
    floor = f"more than {low:g}" if low_exclusive else f"at least {low:g}"
    shown = value if math.isfinite(value) else repr(value)  # NaN is not valid JSON
    raise ImplausibleFindingError(
        f"{finding_id}: {field} must be {floor} and at most {high:g} {unit}, not {value:g}",
        finding_id=finding_id, field=field, value=shown, minimum=low, maximum=high, unit=unit)


def check_code(value: str, *, finding_id: str, field: str) -> None:
    if not CODE.match(value) or len(value) > 80:
        raise InvalidFindingError(
            f"{finding_id}: {field} is a code in lower case with underscores "
            f"(e.g. hip_abduction), not {value!r}", finding_id=finding_id, field=field)


def lsi_exact(involved: float, uninvolved: float, *, direction: Direction = "higher_better",
              finding_id: str = "", field: str = "") -> Decimal:
    """Limb symmetry index in %: involved / uninvolved x 100 when more is better; for a time
    (less is better) the ratio is inverted, uninvolved / involved x 100, so a slower
    involved side still scores below 100 % (CLINICAL.md §0)."""
    numerator, denominator = ((involved, uninvolved) if direction == "higher_better"
                              else (uninvolved, involved))
    if denominator <= 0:
        reference = "uninvolved" if direction == "higher_better" else "involved"
        raise UndefinedSymmetryIndexError(
            f"{finding_id}: the {reference} side{f' ({field})' if field else ''} is 0, so the "
            "limb symmetry index cannot be computed; check the entry",
            finding_id=finding_id, field=field, side=reference)
    return dec(numerator) / dec(denominator) * 100


def limb_symmetry_index(involved: float, uninvolved: float, *,
                        direction: Direction = "higher_better", finding_id: str = "",
                        field: str = "") -> float:
    """The LSI in % to one decimal (78.9), the precision it is stored and judged at."""
    return rounded(lsi_exact(involved, uninvolved, direction=direction,
                             finding_id=finding_id, field=field), 1)
