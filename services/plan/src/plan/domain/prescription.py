"""What the clinician prescribes for one exercise, and what the patient did with it in one
logged session: the two inputs of the load-progression rule (CLINICAL.md §3.4).

Values that cannot be a prescription or a performance (a negative load, 0 sets, RPE 11) are
refused as a 422 naming the field. The checks are in ``model_validator``s that raise the
domain error, not in ``Field`` constraints, so the caller gets the documented problem type
instead of a generic validation error. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from kinetic_contracts.problems import RuleViolationError

# How the exercise is advanced when the §3.4 progress row fires. "load" adds kg; the others
# are the rule's "otherwise progress tempo/volume/complexity" (reps = volume).
ProgressionRule = Literal["load", "reps", "tempo", "complexity"]
PROGRESSION_RULES: tuple[ProgressionRule, ...] = ("load", "reps", "tempo", "complexity")

CODE = re.compile(r"^[a-z][a-z0-9_]*$")
CODE_MAX = 80
# Tempo as phases in seconds, eccentric first (the usual convention): "2-1-2", "3-0-1",
# "3-1-X-0"; X is "as fast as possible".
TEMPO = re.compile(r"^(\d{1,2}|X)(-(\d{1,2}|X)){2,3}$")
# Ceilings no programme reaches; exceeding one is a typo or a unit slip.
MAX_SETS = 20
MAX_REPS = 200
MAX_LOAD_KG = 500.0
MAX_REST_SECONDS = 1800
MAX_FREQUENCY_PER_WEEK = 14  # twice daily
DEFAULT_LOAD_INCREMENT_KG = 0.5  # the smallest step on most cable stacks and add-on plates


class InvalidPrescriptionError(RuleViolationError):
    type_slug = "invalid-prescription"
    title = "The prescription is not valid"


class InvalidPerformanceError(RuleViolationError):
    type_slug = "invalid-performance"
    title = "The logged exercise performance is not valid"


def dec(value: float | int) -> Decimal:
    # repr is the shortest string that reads back as the same float: 6.3 -> Decimal("6.3"),
    # so percentages and rounding never miss a boundary by a float's last bit.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def show_kg(value: float | Decimal) -> str:
    """6.0 -> "6", 6.5 -> "6.5", 6.25 -> "6.25": as a clinician writes a load."""
    text = f"{dec(value) if isinstance(value, float) else value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _refuse(error: type[RuleViolationError], field: str, message: str, value: Any) -> None:
    shown = value if not isinstance(value, float) or math.isfinite(value) else repr(value)
    raise error(f"{field}: {message}", field=field, value=shown)


def _check_int(error: type[RuleViolationError], field: str, value: int, low: int,
               high: int) -> None:
    if not low <= value <= high:
        _refuse(error, field, f"must be {low}–{high}, not {value}", value)


def _check_number(error: type[RuleViolationError], field: str, value: float, low: float,
                  high: float, unit: str = "") -> None:
    # NaN fails both comparisons, so it is refused too.
    if not (low <= value <= high):
        suffix = f" {unit}" if unit else ""
        _refuse(error, field, f"must be {low:g}–{high:g}{suffix}, not {value:g}", value)


class Prescription(BaseModel):
    """One exercise as prescribed: sets × reps @ load, tempo, rest, how often a week, how it
    is progressed and which driver it loads. ``changed_on`` is the date its parameters last
    changed; it is what the stale-stimulus check (§3.4) counts from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    exercise: str  # code, e.g. "cable_hip_abduction"
    sets: int
    reps: int
    load_kg: float = 0.0  # external load; 0 for bodyweight
    bodyweight: bool = False  # no external load at all (load_kg is then 0)
    tempo: str | None = None  # "2-1-2"; None where tempo is not prescribed (a run, a hold)
    rest_seconds: int = 60
    frequency_per_week: int = 3
    progression: ProgressionRule = "load"
    driver: str | None = None  # code of the driver it targets; None for symptom-site work
    changed_on: date
    # The equipment's smallest load step (cable stack, dumbbell rack): proposals are rounded
    # to it, because a load that cannot be set on the machine is no proposal at all.
    load_increment_kg: float = DEFAULT_LOAD_INCREMENT_KG

    @model_validator(mode="after")
    def _validate(self) -> Self:
        err = InvalidPrescriptionError
        for field, value in (("exercise", self.exercise), ("driver", self.driver)):
            if value is not None and (not CODE.match(value) or len(value) > CODE_MAX):
                _refuse(err, field, "is a code in lower case with underscores "
                        f"(e.g. cable_hip_abduction), not {value!r}", value)
        _check_int(err, "sets", self.sets, 1, MAX_SETS)
        _check_int(err, "reps", self.reps, 1, MAX_REPS)
        if not self.load_kg >= 0:
            _refuse(err, "load_kg", f"must not be negative, not {self.load_kg:g} kg",
                    self.load_kg)
        _check_number(err, "load_kg", self.load_kg, 0, MAX_LOAD_KG, "kg")
        if self.bodyweight and self.load_kg != 0:
            _refuse(err, "load_kg", "a bodyweight exercise carries no external load: "
                    "set bodyweight to false to add load", self.load_kg)
        if self.tempo is not None and not TEMPO.match(self.tempo):
            _refuse(err, "tempo", "is 3 or 4 phases in seconds, eccentric first "
                    f"(e.g. 2-1-2 or 3-1-X-0), not {self.tempo!r}", self.tempo)
        _check_int(err, "rest_seconds", self.rest_seconds, 0, MAX_REST_SECONDS)
        _check_int(err, "frequency_per_week", self.frequency_per_week, 1,
                   MAX_FREQUENCY_PER_WEEK)
        if not (0 < self.load_increment_kg <= 50) or not math.isfinite(self.load_increment_kg):
            _refuse(err, "load_increment_kg", "must be more than 0 and at most 50 kg, "
                    f"not {self.load_increment_kg:g}", self.load_increment_kg)
        return self

    @property
    def has_external_load(self) -> bool:
        return self.load_kg > 0

    def describe(self) -> str:
        """"3×8 @ 6 kg, 3-0-1" as the clinician writes it."""
        load = "BW" if self.bodyweight or not self.has_external_load else (
            f"{show_kg(self.load_kg)} kg")
        tempo = f", {self.tempo}" if self.tempo else ""
        return f"{self.sets}×{self.reps} @ {load}{tempo}"


class SessionPerformance(BaseModel):
    """One exercise in one logged session, as the patient did it. ``settled_next_morning`` is
    None until the patient answers the next-morning question; a proposal made before then
    is provisional (§3.4 never progresses on an unknown)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    performed_on: date
    reps_per_set: tuple[int, ...]  # one entry per set done, e.g. (8, 8, 8)
    load_kg: float = 0.0  # external load used; 0 for bodyweight
    rpe: float  # rating of perceived exertion, 0–10
    pain_during: int  # NPRS 0–10, the worst during the exercise
    settled_next_morning: bool | None  # pain back to baseline by next morning; None: not yet known
    # Morning pain/stiffness worse than the previous week (Silbernagel, S21). Required, not
    # defaulted: assuming "not worse" would let a patient progress on a question never asked.
    morning_worse_than_last_week: bool

    @model_validator(mode="after")
    def _validate(self) -> Self:
        err = InvalidPerformanceError
        _check_int(err, "sets_done", len(self.reps_per_set), 0, MAX_SETS)
        for i, reps in enumerate(self.reps_per_set):
            _check_int(err, f"reps_per_set[{i}]", reps, 1, MAX_REPS)
        if not self.load_kg >= 0:
            _refuse(err, "load_kg", f"must not be negative, not {self.load_kg:g} kg",
                    self.load_kg)
        _check_number(err, "load_kg", self.load_kg, 0, MAX_LOAD_KG, "kg")
        _check_number(err, "rpe", self.rpe, 0, 10)
        _check_int(err, "pain_during", self.pain_during, 0, 10)
        return self

    @property
    def sets_done(self) -> int:
        return len(self.reps_per_set)
