"""The objective findings of an evaluation as the clinician enters them: movement quality,
mobility, strength, the hop battery, the Y-balance test and the heel raise (CLINICAL.md §2).

Every finding carries a stable ``finding_id`` that clinical reasoning cites when it links a
driver to the findings that show it. A client may supply one; otherwise it is derived from
what was tested ("strength:hip_abduction", "movement:sls", "hop_battery"), so the same test
gets the same id at the initial evaluation and at every reassessment.

Values a body cannot produce (a negative reach, a 0 s hop, 3000 N of hip abduction) are
refused as a 422 naming the finding and the field. The bounds are wide on purpose: they
catch typos and unit slips, not unusual patients. They are also re-checked when stored
findings are read back, so they may be widened later but never narrowed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from assessment.domain.findings.errors import DuplicateFindingError, InvalidFindingError
from assessment.domain.findings.values import (
    FINDING_ID,
    FINDING_ID_MAX,
    KGF_TO_N,
    RATING_SCORE,
    Direction,
    Rating,
    Side,
    SidePair,
    check_code,
    check_range,
    dec,
    lsi_exact,
    other,
)

# Ceilings that no patient reaches; each is a typo or a unit slip when exceeded.
MAX_FORCE_N = 2000.0
MAX_TRIALS = 3  # best of 3 (CLINICAL.md §2)
MAX_LEVER_ARM_M = 1.5
MOBILITY_MAX = {"deg": 180.0, "cm": 100.0}
MAX_HOP_CM = 1000.0
MAX_TIMED_HOP_S = 30.0
MAX_REACH_CM = 200.0
LIMB_LENGTH_CM = (30.0, 150.0)
MAX_HEEL_RAISES = 200
BODY_MASS_KG = (10.0, 400.0)


class _Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    finding_id: str = Field(max_length=FINDING_ID_MAX, examples=["strength:hip_abduction"])

    @classmethod
    def derive_id(cls, data: dict[str, Any]) -> str | None:
        raise NotImplementedError

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        # Filled in before validation so the stored finding always carries its id: a later
        # change to the derivation can never rename a finding a driver already cites.
        if isinstance(data, dict) and data.get("finding_id") is None:
            derived = cls.derive_id(data)
            if derived is not None:
                return {**data, "finding_id": derived}
        return data

    @model_validator(mode="after")
    def _validate(self) -> Self:
        self._check_values()
        if not FINDING_ID.match(self.finding_id):
            raise InvalidFindingError(
                f"finding id {self.finding_id!r} is codes joined by colons "
                "(e.g. strength:hip_abduction)", finding_id=self.finding_id, field="finding_id")
        return self

    def _check_values(self) -> None:
        pass


def _code_id(prefix: str, field: str) -> Any:
    def derive(cls: type, data: dict[str, Any]) -> str | None:
        value = data.get(field)
        return f"{prefix}:{value}" if isinstance(value, str) else None
    return classmethod(derive)


# -- movement quality ----------------------------------------------------------------------

class SquatSide(BaseModel):
    """One side of a single-leg squat, rated on the five items of Crossley et al. (S20)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    overall: Rating
    trunk: Rating
    pelvis: Rating
    hip: Rating
    knee: Rating

    @property
    def worst(self) -> Rating:
        # A side is only as good as its worst item: an "overall good" with the knee poor is
        # still a knee dropping inward, which is what the criterion looks for.
        items = (self.overall, self.trunk, self.pelvis, self.hip, self.knee)
        return min(items, key=RATING_SCORE.__getitem__)


class SingleLegSquat(_Finding):
    kind: Literal["single_leg_squat"] = "single_leg_squat"
    left: SquatSide | None = None
    right: SquatSide | None = None
    notes: str = Field(default="", max_length=2000,
                       examples=["Right knee medial to 2nd toe, contralateral pelvic drop"])

    @classmethod
    def derive_id(cls, data: dict[str, Any]) -> str | None:
        return "movement:sls"

    def _check_values(self) -> None:
        if self.left is None and self.right is None:
            raise InvalidFindingError(f"{self.finding_id}: rate at least one side",
                                      finding_id=self.finding_id, field="left")

    def rating(self, side: Side) -> Rating | None:
        rated = self.left if side == "left" else self.right
        return rated.worst if rated is not None else None


class MovementTest(_Finding):
    """Any other rated movement (step-down, lunge, landing…): one rating per side."""

    kind: Literal["movement_test"] = "movement_test"
    test: str = Field(examples=["step_down_20cm"])
    left: Rating | None = None
    right: Rating | None = None
    notes: str = Field(default="", max_length=2000)

    derive_id = _code_id("movement", "test")

    def _check_values(self) -> None:
        check_code(self.test, finding_id=self.finding_id, field="test")
        if self.left is None and self.right is None:
            raise InvalidFindingError(f"{self.finding_id}: rate at least one side",
                                      finding_id=self.finding_id, field="left")

    def rating(self, side: Side) -> Rating | None:
        return self.left if side == "left" else self.right


Movement = Annotated[SingleLegSquat | MovementTest, Field(discriminator="kind")]


# -- mobility ------------------------------------------------------------------------------

class Mobility(_Finding):
    measure: str = Field(examples=["ankle_dorsiflexion", "hip_internal_rotation"])
    method: str | None = Field(default=None, examples=["knee_to_wall"])
    unit: Literal["deg", "cm"]
    left: float
    right: float

    derive_id = _code_id("mobility", "measure")

    def _check_values(self) -> None:
        check_code(self.measure, finding_id=self.finding_id, field="measure")
        if self.method is not None:
            check_code(self.method, finding_id=self.finding_id, field="method")
        for side in ("left", "right"):
            check_range(getattr(self, side), finding_id=self.finding_id, field=side, low=0,
                        high=MOBILITY_MAX[self.unit], unit=self.unit)

    @property
    def right_minus_left(self) -> float:
        return float(dec(self.right) - dec(self.left))

    @property
    def difference(self) -> float:
        """How far apart the sides are, whichever is less mobile."""
        return abs(self.right_minus_left)


# -- strength ------------------------------------------------------------------------------

class StrengthTest(_Finding):
    """Isometric strength (handheld dynamometer or similar), best of up to 3 trials a side.
    One unit for the whole test, so the two sides can never be in different units."""

    muscle_group: str = Field(examples=["hip_abduction", "hip_external_rotation",
                                        "quadriceps", "hamstrings", "calf"])
    unit: Literal["kgf", "N"]
    involved_side: Side = Field(description="The symptomatic side: the numerator of the LSI")
    trials_left: tuple[float, ...] = Field(examples=[(17.5, 18.0, 17.8)])
    trials_right: tuple[float, ...] = Field(examples=[(13.6, 14.2, 13.9)])
    lever_arm_m: float | None = Field(
        default=None, description="Joint axis to dynamometer pad, so torque can be computed")

    derive_id = _code_id("strength", "muscle_group")

    def _check_values(self) -> None:
        check_code(self.muscle_group, finding_id=self.finding_id, field="muscle_group")
        ceiling = MAX_FORCE_N if self.unit == "N" else round(MAX_FORCE_N / KGF_TO_N, 1)
        for side in ("left", "right"):
            field = f"trials_{side}"
            trials = getattr(self, field)
            if not 1 <= len(trials) <= MAX_TRIALS:
                raise InvalidFindingError(
                    f"{self.finding_id}: {field} holds 1 to {MAX_TRIALS} trials, "
                    f"not {len(trials)}", finding_id=self.finding_id, field=field)
            for i, value in enumerate(trials):
                check_range(value, finding_id=self.finding_id, field=f"{field}[{i}]", low=0,
                            high=ceiling, unit=self.unit)
        if self.lever_arm_m is not None:
            check_range(self.lever_arm_m, finding_id=self.finding_id, field="lever_arm_m",
                        low=0, high=MAX_LEVER_ARM_M, unit="m", low_exclusive=True)

    def trials(self, side: Side) -> tuple[float, ...]:
        return self.trials_left if side == "left" else self.trials_right

    def best(self, side: Side) -> float:
        """The best trial, in the test's unit."""
        return max(self.trials(side))

    def _best_n(self, side: Side) -> Decimal:
        best = dec(self.best(side))
        return best * dec(KGF_TO_N) if self.unit == "kgf" else best

    def best_newtons(self, side: Side) -> float:
        return float(self._best_n(side))

    def torque_nm(self, side: Side) -> float | None:
        """Best force x lever arm (N·m); None without a lever arm."""
        if self.lever_arm_m is None:
            return None
        return float(self._best_n(side) * dec(self.lever_arm_m))

    def torque_nm_per_kg(self, side: Side, body_mass_kg: float | None) -> float | None:
        """Torque normalised to body mass (N·m/kg); None without a lever arm or a mass."""
        if self.lever_arm_m is None or body_mass_kg is None:
            return None
        return float(self._best_n(side) * dec(self.lever_arm_m) / dec(body_mass_kg))

    def lsi(self) -> float:
        """Involved best / uninvolved best x 100 (%, unrounded). Unit-free, and the same on
        force or torque because one lever arm serves both sides."""
        return float(lsi_exact(self.best(self.involved_side), self.best(other(self.involved_side)),
                               finding_id=self.finding_id,
                               field=f"trials_{other(self.involved_side)}"))


# -- performance tests ---------------------------------------------------------------------

HopName = Literal["single_hop", "triple_hop", "crossover_hop", "timed_6m_hop"]


class _Hop(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    direction: Direction
    unit: str


HOPS: dict[HopName, _Hop] = {
    "single_hop": _Hop(field="single_hop_cm", direction="higher_better", unit="cm"),
    "triple_hop": _Hop(field="triple_hop_cm", direction="higher_better", unit="cm"),
    "crossover_hop": _Hop(field="crossover_hop_cm", direction="higher_better", unit="cm"),
    # A time: lower is better, so its LSI is inverted (uninvolved time / involved time).
    "timed_6m_hop": _Hop(field="timed_6m_hop_s", direction="lower_better", unit="s"),
}


class HopBattery(_Finding):
    """Single-leg hop battery: one result per side for each hop performed."""

    involved_side: Side
    single_hop_cm: SidePair | None = None
    triple_hop_cm: SidePair | None = None
    crossover_hop_cm: SidePair | None = None
    timed_6m_hop_s: SidePair | None = None

    @classmethod
    def derive_id(cls, data: dict[str, Any]) -> str | None:
        return "hop_battery"

    def _check_values(self) -> None:
        if not self.recorded():
            raise InvalidFindingError(f"{self.finding_id}: record at least one hop",
                                      finding_id=self.finding_id, field="single_hop_cm")
        for name in self.recorded():
            hop = HOPS[name]
            pair: SidePair = getattr(self, hop.field)
            for side in ("left", "right"):
                if hop.unit == "s":
                    check_range(pair.of(side), finding_id=self.finding_id,
                                field=f"{hop.field}.{side}", low=0, high=MAX_TIMED_HOP_S,
                                unit="s", low_exclusive=True)
                else:
                    check_range(pair.of(side), finding_id=self.finding_id,
                                field=f"{hop.field}.{side}", low=0, high=MAX_HOP_CM, unit="cm")

    def recorded(self) -> list[HopName]:
        return [name for name, hop in HOPS.items() if getattr(self, hop.field) is not None]

    def result(self, hop: HopName) -> SidePair | None:
        return getattr(self, HOPS[hop].field)

    def lsi(self, hop: HopName) -> float:
        """LSI of one hop (%, unrounded); inverted for the timed hop."""
        pair = self.result(hop)
        if pair is None:
            raise InvalidFindingError(f"{self.finding_id}: {hop} was not recorded",
                                      finding_id=self.finding_id, field=HOPS[hop].field)
        involved, uninvolved = pair.of(self.involved_side), pair.of(other(self.involved_side))
        reference = self.involved_side if HOPS[hop].direction == "lower_better" else other(
            self.involved_side)
        return float(lsi_exact(involved, uninvolved, direction=HOPS[hop].direction,
                               finding_id=self.finding_id,
                               field=f"{HOPS[hop].field}.{reference}"))


class YBalance(_Finding):
    """Y-balance test, lower quarter: reach (cm) in three directions, limb length (cm)."""

    anterior_cm: SidePair
    posteromedial_cm: SidePair | None = None
    posterolateral_cm: SidePair | None = None
    limb_length_cm: SidePair | None = None

    @classmethod
    def derive_id(cls, data: dict[str, Any]) -> str | None:
        return "y_balance"

    def _check_values(self) -> None:
        for field in ("anterior_cm", "posteromedial_cm", "posterolateral_cm"):
            pair = getattr(self, field)
            for side in ("left", "right"):
                if pair is not None:
                    check_range(pair.of(side), finding_id=self.finding_id,
                                field=f"{field}.{side}", low=0, high=MAX_REACH_CM, unit="cm")
        if self.limb_length_cm is not None:
            low, high = LIMB_LENGTH_CM
            for side in ("left", "right"):
                check_range(self.limb_length_cm.of(side), finding_id=self.finding_id,
                            field=f"limb_length_cm.{side}", low=low, high=high, unit="cm")

    @property
    def anterior_asymmetry_cm(self) -> float:
        """|right - left| anterior reach (cm); which side reaches less does not matter."""
        return float(abs(dec(self.anterior_cm.right) - dec(self.anterior_cm.left)))

    def composite_pct(self, side: Side) -> float | None:
        """(anterior + posteromedial + posterolateral) / (3 x limb length) x 100; None until
        all three reaches and the limb length are recorded."""
        pairs = (self.anterior_cm, self.posteromedial_cm, self.posterolateral_cm)
        if self.limb_length_cm is None or any(p is None for p in pairs):
            return None
        reach = sum((dec(p.of(side)) for p in pairs if p is not None), Decimal(0))
        return float(reach / (3 * dec(self.limb_length_cm.of(side))) * 100)


class HeelRaise(_Finding):
    """Single-leg heel raise to fatigue: repetitions per side (10° incline, 30/min)."""

    involved_side: Side
    left: int
    right: int

    @classmethod
    def derive_id(cls, data: dict[str, Any]) -> str | None:
        return "heel_raise"

    def _check_values(self) -> None:
        for side in ("left", "right"):
            check_range(getattr(self, side), finding_id=self.finding_id, field=side, low=0,
                        high=MAX_HEEL_RAISES, unit="reps")

    @property
    def involved_reps(self) -> int:
        return self.left if self.involved_side == "left" else self.right

    @property
    def uninvolved_reps(self) -> int:
        return self.right if self.involved_side == "left" else self.left

    def lsi(self) -> float:
        return float(lsi_exact(self.involved_reps, self.uninvolved_reps,
                               finding_id=self.finding_id, field=other(self.involved_side)))


# -- the evaluation's findings -------------------------------------------------------------

Finding = (SingleLegSquat | MovementTest | Mobility | StrengthTest | HopBattery | YBalance
           | HeelRaise)


class ObjectiveFindings(BaseModel):
    """Everything measured at one evaluation; any part may be empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    movement: tuple[Movement, ...] = Field(default=(), max_length=30)
    mobility: tuple[Mobility, ...] = Field(default=(), max_length=30)
    strength: tuple[StrengthTest, ...] = Field(default=(), max_length=30)
    hop_battery: tuple[HopBattery, ...] = Field(default=(), max_length=30)
    y_balance: tuple[YBalance, ...] = Field(default=(), max_length=30)
    heel_raise: tuple[HeelRaise, ...] = Field(default=(), max_length=30)
    body_mass_kg: float | None = Field(default=None,
                                       description="For strength normalised to N·m/kg")

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.body_mass_kg is not None:
            low, high = BODY_MASS_KG
            check_range(self.body_mass_kg, finding_id="findings", field="body_mass_kg",
                        low=low, high=high, unit="kg")
        seen: set[str] = set()
        for finding in self.all():
            if finding.finding_id in seen:
                raise DuplicateFindingError(
                    f"two findings are both {finding.finding_id}: give one its own finding_id",
                    finding_id=finding.finding_id, field="finding_id")
            seen.add(finding.finding_id)
        return self

    def all(self) -> tuple[Finding, ...]:
        return (*self.movement, *self.mobility, *self.strength, *self.hop_battery,
                *self.y_balance, *self.heel_raise)

    def get(self, finding_id: str) -> Finding | None:
        return next((f for f in self.all() if f.finding_id == finding_id), None)
