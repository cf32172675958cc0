"""The load-progression rule (CLINICAL.md §3.4), evaluated per exercise after each logged
session, the stale-stimulus flag, and the manual-therapy link rule (§3.3 d).

§3.4, in the order it is applied here:

1. regress  — pain during > 5/10 OR not settled by next morning OR morning pain/stiffness
              worse than the previous week (Silbernagel pain-monitoring model, S21). Checked
              first: any one of them is enough, so a known regress never waits for anything.
2. provisional hold — "settled by next morning" not yet answered: nothing progresses on an
              unknown; the reason says what follows either answer.
3. progress — every prescribed set done at target reps (or 1–2 over) at the prescribed load
              AND RPE ≤ 7 AND pain during ≤ 3/10 AND settled: +5–10 % load, or (bodyweight /
              non-load rule) tempo, volume or complexity.
4. hold     — pain during 4–5/10 OR RPE 8–9, settled, morning symptoms not worse: repeat.
5. hold (no row matched) — e.g. a set short with pain and effort fine: repeat, saying why.

The proposal is only a proposal: the clinician confirms it (the software never changes a
prescription on its own). Pure: no I/O, no clock; dates are passed in.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from kinetic_contracts.problems import RuleViolationError
from plan.domain.prescription import (
    InvalidPerformanceError,
    Prescription,
    SessionPerformance,
    dec,
    show_kg,
)

Action = Literal["progress", "hold", "regress"]

# The rule that fired, recorded with every proposal (CLINICAL.md §7: record which rule, and
# which rule-set version, every decision used).
RULE_PROGRESS = "3.4-progress"
RULE_HOLD = "3.4-hold"
RULE_REGRESS = "3.4-regress"
RULE_HOLD_UNMATCHED = "3.4-hold-unmatched"
RULE_AWAITING_NEXT_MORNING = "3.4-awaiting-next-morning"
STIMULUS_STALE = "STIMULUS_STALE"


class InvalidThresholdsError(RuleViolationError):
    type_slug = "invalid-progression-thresholds"
    title = "The progression thresholds are not valid"


class InvalidStageError(RuleViolationError):
    type_slug = "invalid-stage"
    title = "Stages are numbered from 1"


class ManualTherapyNotLinkedError(RuleViolationError):
    type_slug = "manual-therapy-not-linked"
    title = "Manual therapy is recorded only when linked to an active-program goal"


class ProgressionThresholds(BaseModel):
    """CLINICAL.md §6 DEFAULTs; each organization may change them (the rule-set version that
    holds them records who and when). Percent ranges are (lower, upper): proposals take the
    lower step, the clinician may go up to the upper one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    load_step_pct: tuple[float, float] = (5, 10)
    regress_pct: tuple[float, float] = (10, 20)
    rpe_max_progress: float = 7
    rpe_max_hold: float = 9  # §3.4 hold row: "RPE 8–9"; RPE 10 matches no row
    pain_max_progress: int = 3
    pain_max_hold: int = 5  # Silbernagel: up to 5/10 is "acceptable"
    stale_weeks: int = 2
    stale_stages: tuple[int, ...] = (2, 3, 4)  # §3.4: "while in stage 2–4"; never stage 1
    reps_over_max: int = 2  # §3.4: "at target reps (or 1–2 reps over)"
    reps_step: tuple[int, int] = (1, 2)  # volume progression when load is not the lever

    @model_validator(mode="after")
    def _validate(self) -> Self:
        def refuse(field: str, message: str, value: Any) -> None:
            raise InvalidThresholdsError(f"{field}: {message}", field=field, value=value)

        for field, (low, high), ceiling in (("load_step_pct", self.load_step_pct, 100),
                                            ("regress_pct", self.regress_pct, 99)):
            if not 0 < low <= high <= ceiling:
                refuse(field, f"is (lower, upper) with 0 < lower ≤ upper ≤ {ceiling}",
                       [low, high])
        if not 0 <= self.rpe_max_progress <= self.rpe_max_hold <= 10:
            refuse("rpe_max_progress", "0 ≤ rpe_max_progress ≤ rpe_max_hold ≤ 10",
                   self.rpe_max_progress)
        if not 0 <= self.pain_max_progress <= self.pain_max_hold <= 10:
            refuse("pain_max_progress", "0 ≤ pain_max_progress ≤ pain_max_hold ≤ 10",
                   self.pain_max_progress)
        if self.stale_weeks < 1:
            refuse("stale_weeks", "must be at least 1", self.stale_weeks)
        if any(stage < 1 for stage in self.stale_stages):
            refuse("stale_stages", "stages are numbered from 1", list(self.stale_stages))
        if self.reps_over_max < 0:
            refuse("reps_over_max", "must not be negative", self.reps_over_max)
        if not 1 <= self.reps_step[0] <= self.reps_step[1]:
            refuse("reps_step", "is (lower, upper) with 1 ≤ lower ≤ upper",
                   list(self.reps_step))
        return self


DEFAULT_THRESHOLDS = ProgressionThresholds()


class Proposal(BaseModel):
    """What §3.4 proposes after one session: the action, the next parameters (unchanged on a
    hold), the rule that fired and the reason with the numbers. ``provisional`` means it
    waits for the next-morning answer and will be decided again then. ``basis`` is the
    prescription it was judged against: accepting it only makes sense while the plan still
    holds that one (None in proposals stored before it was kept)."""

    model_config = ConfigDict(frozen=True)
    action: Action
    next: Prescription
    rule: str
    reason: str
    provisional: bool = False
    stage: int
    basis: Prescription | None = None


# --- arithmetic ----------------------------------------------------------------------------

def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def _pct(new: Decimal, old: Decimal) -> str:
    """Signed change in % to one decimal, half up: 6 -> 6.5 is "+8.3%"."""
    change = ((new / old - 1) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = f"{change:f}".rstrip("0").rstrip(".")
    return f"+{text}%" if change > 0 else f"{text.replace('-', '−')}%"


def _range(values: tuple[float, float], unit: str = "%") -> str:
    low, high = values
    return f"{low:g}{unit}" if low == high else f"{low:g}–{high:g}{unit}"


def _with(p: Prescription, on: date, **changes: Any) -> Prescription:
    # Re-validated (model_copy would not), and dated: the stale-stimulus clock restarts
    # on the day the new parameters were earned.
    return Prescription.model_validate({**p.model_dump(), **changes, "changed_on": on})


# --- the actions ---------------------------------------------------------------------------

def _progress_load(p: Prescription, t: ProgressionThresholds) -> tuple[Decimal, str] | str:
    """Rounding rule: the lower step (+5 %) rounded UP to the equipment's increment
    (0.5 kg by default), so the increase is never below the range; if that lands above the
    upper step (+10 %) no settable load fits the range and the caller progresses volume
    instead ("otherwise progress tempo/volume/complexity")."""
    load, step = dec(p.load_kg), dec(p.load_increment_kg)
    low = load * (1 + dec(t.load_step_pct[0]) / 100)
    high = load * (1 + dec(t.load_step_pct[1]) / 100)
    proposed = _to_step(low, step, ROUND_CEILING)
    window = f"+{_range(t.load_step_pct)} is {show_kg(low)}–{show_kg(high)} kg"
    if proposed > high:
        return (f"no {show_kg(step)} kg step fits the +{_range(t.load_step_pct)} range "
                f"({show_kg(low)}–{show_kg(high)} kg; the next step up is "
                f"{show_kg(proposed)} kg, {_pct(proposed, load)})")
    return proposed, (f"increase load {show_kg(load)} → {show_kg(proposed)} kg "
                      f"({_pct(proposed, load)}; {window}, the lower step rounded up to the "
                      f"next {show_kg(step)} kg)")


def _progress(p: Prescription, perf: SessionPerformance, t: ProgressionThresholds
              ) -> tuple[Prescription, str]:
    on = perf.performed_on
    if p.progression == "load":
        if p.has_external_load:
            fitted = _progress_load(p, t)
            if not isinstance(fitted, str):
                load, text = fitted
                return _with(p, on, load_kg=float(load)), text
            why = fitted
        else:
            why = "no external load to increase (bodyweight)"
        new, text = _progress_reps(p, perf, t)
        return new, f"{why}: progress volume instead, {text}"
    if p.progression == "reps":
        return _progress_reps(p, perf, t)
    if p.progression == "tempo":
        phases = (p.tempo or "").split("-")
        if phases[0].isdigit():
            # The first phase is the eccentric by convention: slowing it adds time under
            # tension without adding load.
            tempo = "-".join([str(int(phases[0]) + 1), *phases[1:]])
            return (_with(p, on, tempo=tempo),
                    f"progress tempo {p.tempo} → {tempo} (eccentric 1 s slower)")
        return p, ("progress tempo: no numeric eccentric phase to slow; the clinician sets "
                   "the new tempo (parameters unchanged until then)")
    return p, ("progress complexity (e.g. less stable surface, single-leg, sport-specific "
               "pattern): the clinician chooses the variation (parameters unchanged until then)")


def _progress_reps(p: Prescription, perf: SessionPerformance, t: ProgressionThresholds
                   ) -> tuple[Prescription, str]:
    low, high = t.reps_step
    reps = p.reps + low
    return (_with(p, perf.performed_on, reps=reps),
            f"reps {p.reps} → {reps} per set (+{_range((low, high), '')} reps; lower step)")


def _regress(p: Prescription, perf: SessionPerformance, t: ProgressionThresholds
             ) -> tuple[Prescription, str]:
    """Lower step (−10 %) rounded DOWN to the increment, so the reduction is never below
    the range; if that overshoots the upper step (−20 %) or reaches 0 kg, volume is reduced
    instead. Bodyweight work always regresses volume."""
    on = perf.performed_on
    window = f"−{_range(t.regress_pct)}"
    why = "no external load to reduce (bodyweight)"
    if p.has_external_load:
        load, step = dec(p.load_kg), dec(p.load_increment_kg)
        proposed = _to_step(load * (1 - dec(t.regress_pct[0]) / 100), step, ROUND_FLOOR)
        floor = load * (1 - dec(t.regress_pct[1]) / 100)
        if proposed > 0 and proposed >= floor:
            return (_with(p, on, load_kg=float(proposed)),
                    f"reduce load {show_kg(load)} → {show_kg(proposed)} kg "
                    f"({_pct(proposed, load)}; {window}, the lower step rounded down to the "
                    f"next {show_kg(step)} kg)")
        why = (f"no {show_kg(step)} kg step fits the {window} range ("
               + (f"the next step down is {show_kg(proposed)} kg, {_pct(proposed, load)})"
                  if proposed > 0 else "the next step down is 0 kg)"))
    # Volume: reps first (the same movement, fewer repetitions), at least one fewer.
    reps = min(int(p.reps * (1 - dec(t.regress_pct[0]) / 100)), p.reps - 1)
    if reps >= 1:
        return (_with(p, on, reps=reps),
                f"{why}: reduce volume, reps {p.reps} → {reps} per set "
                f"({_pct(Decimal(reps), Decimal(p.reps))}; {window})")
    if p.sets > 1:
        sets = p.sets - 1
        return (_with(p, on, sets=sets),
                f"{why}: reduce volume, sets {p.sets} → {sets} "
                f"({_pct(Decimal(sets), Decimal(p.sets))}; {window})")
    return p, f"{why}, and 1×1 cannot be reduced: review the exercise"


def _shortfalls(p: Prescription, perf: SessionPerformance, t: ProgressionThresholds
                ) -> list[str]:
    """How the session differed from "all prescribed sets at target reps (or 1–2 over) at
    the prescribed load"; empty when it did not."""
    found: list[str] = []
    if perf.sets_done != p.sets:
        found.append(f"{perf.sets_done} of {p.sets} prescribed sets done")
    for i, reps in enumerate(perf.reps_per_set[:p.sets], start=1):
        if reps < p.reps:
            found.append(f"set {i} short: {reps} of {p.reps} reps")
        elif reps > p.reps + t.reps_over_max:
            found.append(f"set {i}: {reps} reps, more than {t.reps_over_max} over the target "
                         f"of {p.reps} (check the prescription was followed)")
    if dec(perf.load_kg) != dec(p.load_kg):
        found.append(f"done at {show_kg(perf.load_kg)} kg, prescribed {show_kg(p.load_kg)} kg")
    return found


def decide_progression(prescription: Prescription, performance: SessionPerformance,
                       thresholds: ProgressionThresholds, stage: int) -> Proposal:
    """Apply §3.4 to one exercise after one logged session (see the module docstring)."""
    p, perf, t = prescription, performance, thresholds
    if stage < 1:
        raise InvalidStageError(f"stage: stages are numbered from 1, not {stage}",
                                field="stage", value=stage)
    if perf.performed_on < p.changed_on:
        raise InvalidPerformanceError(
            f"performed_on: the session ({perf.performed_on}) predates the prescription's "
            f"parameters ({p.changed_on}); judge it against the prescription it was done to",
            field="performed_on", value=str(perf.performed_on))

    pain, rpe = perf.pain_during, perf.rpe
    now = f"{p.exercise} {p.describe()}"

    def proposal(action: Action, new: Prescription, rule: str, reason: str,
                 provisional: bool = False) -> Proposal:
        return Proposal(action=action, next=new, rule=rule, reason=reason,
                        provisional=provisional, stage=stage, basis=p)

    # 1. Regress: any single trigger is enough, whatever else is still unknown.
    triggers = []
    if pain > t.pain_max_hold:
        triggers.append(f"pain during {pain}/10 > {t.pain_max_hold}/10")
    if perf.settled_next_morning is False:
        triggers.append("pain not settled by next morning")
    if perf.morning_worse_than_last_week:
        triggers.append("morning pain/stiffness worse than the previous week")
    if triggers:
        new, text = _regress(p, perf, t)
        return proposal("regress", new, RULE_REGRESS,
                        f"{'; '.join(triggers)} → regress {now}: {text}; record it.")

    # 2. Not yet known whether it settled: decide both ways, commit to neither.
    if perf.settled_next_morning is None:
        settled = decide_progression(
            p, perf.model_copy(update={"settled_next_morning": True}), t, stage)
        unsettled = decide_progression(
            p, perf.model_copy(update={"settled_next_morning": False}), t, stage)
        return proposal(
            "hold", p, RULE_AWAITING_NEXT_MORNING,
            f"Provisional: waits for the next-morning answer (never progress on an unknown). "
            f"If the pain settled by next morning: {settled.action} → "
            f"{settled.next.describe()}; if not: regress → {unsettled.next.describe()}. "
            f"Until then hold {now}.", provisional=True)

    # 3–5. Settled, morning symptoms not worse.
    shortfalls = _shortfalls(p, perf, t)
    effort = f"RPE {rpe:g}, pain during {pain}/10, settled by next morning"
    if not shortfalls and rpe <= t.rpe_max_progress and pain <= t.pain_max_progress:
        new, text = _progress(p, perf, t)
        done = ", ".join(str(r) for r in perf.reps_per_set)
        return proposal(
            "progress", new, RULE_PROGRESS,
            f"All {p.sets} sets at target (done {done}; target {p.reps}), RPE {rpe:g} ≤ "
            f"{t.rpe_max_progress:g}, pain during {pain}/10 ≤ {t.pain_max_progress}/10, "
            f"settled by next morning, morning symptoms not worse → {text}.")

    zone = []
    if t.pain_max_progress < pain <= t.pain_max_hold:
        zone.append(f"pain during {pain}/10 ({t.pain_max_progress + 1}–{t.pain_max_hold}: "
                    "acceptable)")
    if t.rpe_max_progress < rpe <= t.rpe_max_hold:
        zone.append(f"RPE {rpe:g} (above {t.rpe_max_progress:g}, at most {t.rpe_max_hold:g})")
    extra = f"; also {'; '.join(shortfalls)}" if shortfalls else ""
    if zone:
        return proposal(
            "hold", p, RULE_HOLD,
            f"{' and '.join(zone)}, settled by next morning, morning symptoms not worse"
            f"{extra} → hold {now} and repeat.")

    unmet = list(shortfalls)
    if rpe > t.rpe_max_hold:
        unmet.append(f"RPE {rpe:g} > {t.rpe_max_hold:g}")
    return proposal(
        "hold", p, RULE_HOLD_UNMATCHED,
        f"No §3.4 row matched ({effort}, but {'; '.join(unmet)}) → hold {now} and repeat.")


def stimulus_stale(prescription: Prescription, today: date, stage: int,
                   thresholds: ProgressionThresholds = DEFAULT_THRESHOLDS) -> bool:
    """§3.4 STIMULUS_STALE: parameters unchanged for ≥ stale_weeks (2) consecutive weeks
    while in stage 2–4 — "a stimulus that never changes stops producing adaptation".
    Never in stage 1, where calming irritability comes before adaptation."""
    if stage not in thresholds.stale_stages:
        return False
    return (today - prescription.changed_on).days >= 7 * thresholds.stale_weeks


def check_manual_therapy(linked_goal: str | None, active_goals: set[str]) -> None:
    """§3.3 (d): manual therapy is recorded only as a field of a session and only when it is
    linked to a goal of the active program — it exists to allow the loading, not instead of
    it. Raises a 422 otherwise."""
    goal = (linked_goal or "").strip()
    if not goal:
        raise ManualTherapyNotLinkedError(
            "manual therapy must name the active-program goal it serves",
            field="linked_goal", value=linked_goal)
    if goal not in active_goals:
        raise ManualTherapyNotLinkedError(
            f"manual therapy is linked to {goal!r}, which is not a goal of the active program",
            field="linked_goal", value=linked_goal, active_goals=sorted(active_goals))
