"""Progress-stalled rules STALL-1 … STALL-5 (CLINICAL.md §3.2). Each fired rule is a
``StallFlag`` that raises REASSESS_DUE; the clinician answers it with a
``ReassessmentOutcome``. Pure: the episode is a snapshot and today's date is passed in.

Every comparison reads the measure in its good direction (``MeasureRule``): improvement is
current − baseline for a higher_better measure and baseline − current for a lower_better one,
so a positive number is always better. Plan does not import assessment's catalog, so each
measure's direction, MCID and MDC travel here as data (the organization's rule set).

Thresholds (§3.2, with the §3.2 noise guard, read the same way assessment reads a change):
- improved: improvement ≥ the MCID — or the relative MCID where the measure has one (NPRS 30%
  of baseline), whichever bar is lower — and never below the MDC, since a change inside
  measurement error is not a change (NDI: MCID 7.5, MDC 10.2 → 10.2);
- worse: worse by ≥ max(MCID, MDC); the relative MCID is not used for worsening (§7:
  deterioration MCIDs are rarely studied, so the improvement bar is used symmetrically).

Each rule says whether its condition holds *now*. Raising REASSESS_DUE once per rule and
waiting for the clinician's outcome is the workflow's business, not this module's.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kinetic_contracts.assessment.v1.events import EpisodeType
from plan.domain.criteria import PAIN_MEASURES, Text

Direction = Literal["higher_better", "lower_better"]
StallRule = Literal["STALL-1", "STALL-2", "STALL-3", "STALL-4", "STALL-5"]
# The reasons plan's public ReassessmentDue event carries (kinetic_contracts.plan.v1).
DueReason = Literal["progress_stalled", "milestone_due", "scheduled", "pain_flare"]
ReassessmentDecision = Literal["revise_driver", "revise_plan", "continue_with_reason",
                               "refer_out"]
Number = int | float | str
Numbers = dict[str, Number | tuple[Number, ...]]

# STALL-1's milestones: those of the stage the patient is in, while that is stage 1 or 2
# (by position, since clinics rename stages). Read literally, "no stage-1/2 milestone met"
# could never fire once stage 1 has closed (a stage closes only when its milestones are met),
# yet §5 fires STALL-1 at S4 for a runner in stage 2 with "no stage-2 milestone met". A
# patient already past stage 2 has shown a trajectory.
STALL_1_STAGES = frozenset({1, 2})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StallThresholds(_Frozen):
    """CLINICAL.md §6 DEFAULTs; an organization may change each."""

    stall_session_early: int = Field(default=4, ge=1)
    stall_session_late: int = Field(default=8, ge=1)
    stall_weeks_late: int = Field(default=6, ge=1)
    pain_worse_points: float = Field(default=2, gt=0)
    pain_worse_consecutive: int = Field(default=2, ge=1)
    milestone_grace_days: int = Field(default=14, ge=0)
    milestone_grace_days_acute: int = Field(default=7, ge=0)  # acute_clear_driver

    def grace_days(self, episode_type: EpisodeType) -> int:
        return (self.milestone_grace_days_acute if episode_type == "acute_clear_driver"
                else self.milestone_grace_days)


DEFAULT_THRESHOLDS = StallThresholds()


class MeasureRule(_Frozen):
    """How to read a change of one measure score: its direction, MCID and MDC."""

    measure: str = Field(min_length=1, examples=["lefs"])
    score: str | None = Field(default=None, examples=["koos_pain"])  # None: the measure's own
    direction: Direction
    mcid: float = Field(gt=0)
    mdc: float | None = Field(default=None, gt=0)  # None where unpublished
    mcid_pct: float | None = Field(default=None, gt=0, le=100)  # relative MCID, % of baseline

    @property
    def name(self) -> str:
        return self.measure if self.score in (None, self.measure) else (
            f"{self.measure}:{self.score}")

    # Public numbers are floats; the comparisons run on the decimals below, so 5.7 − 3.7 is
    # exactly the 2 it looks like.
    def improvement(self, baseline: float, current: float) -> float:
        return float(self.improvement_dec(baseline, current))

    def improvement_bar(self, baseline: float) -> float:
        return float(self.improvement_bar_dec(baseline))

    def worsening_bar(self) -> float:
        return float(self.worsening_bar_dec())

    def improved(self, baseline: float, current: float) -> bool:
        return self.improvement_dec(baseline, current) >= self.improvement_bar_dec(baseline)

    def improvement_dec(self, baseline: float, current: float) -> Decimal:
        raw = _dec(current) - _dec(baseline)
        return raw if self.direction == "higher_better" else -raw

    def improvement_bar_dec(self, baseline: float) -> Decimal:
        bar = _dec(self.mcid)
        if self.mcid_pct is not None and baseline != 0:
            bar = min(bar, abs(_dec(baseline)) * _dec(self.mcid_pct) / 100)
        return bar if self.mdc is None else max(bar, _dec(self.mdc))  # noise guard

    def worsening_bar_dec(self) -> Decimal:
        mcid = _dec(self.mcid)
        return mcid if self.mdc is None else max(mcid, _dec(self.mdc))  # noise guard


class SessionReading(_Frozen):
    session: int = Field(ge=1)
    value: float = Field(allow_inf_nan=False)


class TrackedMeasure(_Frozen):
    """One measure score followed through the episode: its baseline and its readings, in
    session order. The latest reading is the current value."""

    rule: MeasureRule
    baseline: float = Field(allow_inf_nan=False)
    readings: tuple[SessionReading, ...] = ()

    @field_validator("readings")
    @classmethod
    def _in_session_order(cls, v: tuple[SessionReading, ...]) -> tuple[SessionReading, ...]:
        sessions = [r.session for r in v]
        if len(set(sessions)) != len(sessions):
            raise ValueError("one reading per session")
        return tuple(sorted(v, key=lambda r: r.session))

    @property
    def latest(self) -> float | None:
        return self.readings[-1].value if self.readings else None

    def improvement(self) -> float:
        return float(self._improvement())

    def improved(self) -> bool:
        return self._improvement() >= self.rule.improvement_bar_dec(self.baseline)

    def _improvement(self) -> Decimal:
        # Not re-measured since baseline: no evidence of change, which is what the rules ask.
        return Decimal(0) if self.latest is None else self.rule.improvement_dec(
            self.baseline, self.latest)


class Milestone(_Frozen):
    id: str = Field(min_length=1, max_length=100)
    stage: int = Field(ge=1, description="The stage's position (1 = calm), not its name")
    target_date: date
    met: bool = False


class EpisodeProgress(_Frozen):
    """What the stall rules read, as of one day."""

    episode_type: EpisodeType
    started_on: date
    sessions_used: int = Field(ge=0)
    expected_max_sessions: int = Field(ge=1)
    current_stage: int = Field(ge=1)
    primary: TrackedMeasure  # the primary PROM (LEFS in §5)
    pain: tuple[TrackedMeasure, ...] = ()  # NPRS, one per context (running, stairs)
    secondary: tuple[TrackedMeasure, ...] = ()  # other tracked measures (PSFS, KOOS …)
    milestones: tuple[Milestone, ...] = ()
    discharge_criteria_met: bool = False

    @model_validator(mode="after")
    def _pain_reads_pain(self) -> EpisodeProgress:
        for m in self.pain:
            if m.rule.measure not in PAIN_MEASURES:
                raise ValueError(f"{m.rule.name} does not rate pain")
        return self

    @property
    def tracked(self) -> tuple[TrackedMeasure, ...]:
        return (self.primary, *self.pain, *self.secondary)


class StallFlag(_Frozen):
    rule: StallRule
    due_reason: DueReason  # for plan's public ReassessmentDue event
    numbers: Numbers  # the values that fired the rule
    reason: str  # for the clinician


class ReassessmentOutcome(_Frozen):
    """The clinician's answer to a REASSESS_DUE flag (§3.2): one of four outcomes, always
    with free text and the clinician's id, so a "continue" is never silent."""

    rules: tuple[StallRule, ...] = Field(min_length=1)  # the flags it answers
    outcome: ReassessmentDecision
    free_text: Text
    clinician_id: UUID
    recorded_at: datetime


def evaluate_stalls(progress: EpisodeProgress, thresholds: StallThresholds, today: date
                    ) -> list[StallFlag]:
    """Every §3.2 rule whose condition holds for ``progress`` on ``today``, in rule order.
    ``thresholds``: the organization's (``DEFAULT_THRESHOLDS`` unless it changed them)."""
    flags = [stall_1(progress, thresholds), stall_2(progress, thresholds, today),
             stall_3(progress, thresholds), stall_4(progress, thresholds, today),
             stall_5(progress)]
    return [f for f in flags if f is not None]


def stall_1(progress: EpisodeProgress, thresholds: StallThresholds) -> StallFlag | None:
    """"No trajectory": from session 4, the primary PROM's change from baseline is below its
    MCID and no milestone of the current stage (while in stage 1 or 2) is met."""
    if progress.sessions_used < thresholds.stall_session_early:
        return None
    primary = progress.primary
    if primary.improved() or progress.current_stage not in STALL_1_STAGES:
        return None
    stage_milestones = [m for m in progress.milestones if m.stage == progress.current_stage]
    if any(m.met for m in stage_milestones):
        return None
    improvement = primary.improvement()
    bar = primary.rule.improvement_bar(primary.baseline)
    latest = "not re-measured" if primary.latest is None else f"{primary.latest:g}"
    return StallFlag(
        rule="STALL-1", due_reason="progress_stalled",
        numbers={"sessions_used": progress.sessions_used,
                 "checkpoint_session": thresholds.stall_session_early,
                 "measure": primary.rule.name, "baseline": primary.baseline,
                 "latest": primary.latest if primary.latest is not None else "none",
                 "improvement": improvement, "threshold": bar,
                 "current_stage": progress.current_stage,
                 "stage_milestones": len(stage_milestones), "stage_milestones_met": 0},
        reason=(f"No trajectory at session {progress.sessions_used}: {primary.rule.name} "
                f"{primary.baseline:g} → {latest} (change {improvement:+g}, needs "
                f"{bar:+g}) and no stage-{progress.current_stage} milestone is met"))


def stall_2(progress: EpisodeProgress, thresholds: StallThresholds, today: date
            ) -> StallFlag | None:
    """"Nothing changed": at session 8 or 6 weeks, whichever comes first, no tracked measure
    has improved by its MCID."""
    days = (today - progress.started_on).days
    by_sessions = progress.sessions_used >= thresholds.stall_session_late
    by_weeks = days >= thresholds.stall_weeks_late * 7
    if not (by_sessions or by_weeks):
        return None
    if any(m.improved() for m in progress.tracked):
        return None
    numbers: Numbers = {"sessions_used": progress.sessions_used, "days_since_start": days,
                        "checkpoint_session": thresholds.stall_session_late,
                        "checkpoint_weeks": thresholds.stall_weeks_late,
                        "reached_by": "sessions" if by_sessions else "weeks"}
    for m in progress.tracked:
        numbers[f"{m.rule.name}.improvement"] = m.improvement()
        numbers[f"{m.rule.name}.threshold"] = m.rule.improvement_bar(m.baseline)
    when = (f"session {progress.sessions_used}" if by_sessions
            else f"{days // 7} weeks ({days} days)")
    names = ", ".join(m.rule.name for m in progress.tracked)
    return StallFlag(rule="STALL-2", due_reason="progress_stalled", numbers=numbers,
                     reason=f"Nothing changed by {when}: none of {names} has improved by its "
                            f"MCID")


def stall_3(progress: EpisodeProgress, thresholds: StallThresholds) -> StallFlag | None:
    """"Worsening": pain ≥ 2 points worse than baseline, or a PROM worse by its MCID, on the
    latest 2 consecutive readings of that measure. Consecutive readings, not calendar
    sessions: the region PROM is measured every 4th session, so its consecutive readings are
    what "consecutive sessions" can mean; and the latest ones, so a flare that has settled
    does not keep firing after the clinician answered it. The first measure that fires."""
    runs = stall_3_runs(progress, thresholds)
    return runs[0] if runs else None


def stall_3_runs(progress: EpisodeProgress, thresholds: StallThresholds) -> list[StallFlag]:
    """STALL-3 for every measure that fires it (pain first), each with ``run_from``: the
    session where its run of worse readings began. A flare that goes on is one run, however
    many sessions it lasts; only a reading that is not worse ends it."""
    n = thresholds.pain_worse_consecutive
    candidates = [(m, _pain_bar(m, thresholds)) for m in progress.pain]
    candidates += [(m, m.rule.worsening_bar_dec()) for m in (progress.primary, *progress.secondary)]
    flags: list[StallFlag] = []
    for measure, bar in candidates:
        run: list[tuple[SessionReading, Decimal]] = []
        for r in reversed(measure.readings):
            worse_by = -measure.rule.improvement_dec(measure.baseline, r.value)
            if worse_by < bar:
                break
            run.insert(0, (r, worse_by))
        if len(run) < n:
            continue
        latest = run[-n:]
        pain = measure.rule.measure in PAIN_MEASURES
        sessions = ", ".join(f"S{r.session}" for r, _ in latest)
        flags.append(StallFlag(
            rule="STALL-3", due_reason="pain_flare" if pain else "progress_stalled",
            numbers={"measure": measure.rule.name, "baseline": measure.baseline,
                     "sessions": tuple(r.session for r, _ in latest),
                     "values": tuple(r.value for r, _ in latest),
                     "worse_by": tuple(float(w) for _, w in latest), "threshold": float(bar),
                     "consecutive": n, "run_from": run[0][0].session},
            reason=(f"Worsening: {measure.rule.name} worse than baseline "
                    f"{measure.baseline:g} by ≥ {float(bar):g} on {n} consecutive "
                    f"readings ({sessions})")))
    return flags


def stall_4(progress: EpisodeProgress, thresholds: StallThresholds, today: date
            ) -> StallFlag | None:
    """"Milestone overdue": a milestone not met 14 days after its target date (7 days for
    ``acute_clear_driver``). One flag for all overdue milestones: one reassessment answers
    them."""
    grace = thresholds.grace_days(progress.episode_type)
    overdue = sorted(((m, (today - m.target_date).days) for m in progress.milestones
                      if not m.met and (today - m.target_date).days >= grace),
                     key=lambda pair: -pair[1])
    if not overdue:
        return None
    listed = ", ".join(f"{m.id} ({days} days past {m.target_date.isoformat()})"
                       for m, days in overdue)
    return StallFlag(
        rule="STALL-4", due_reason="milestone_due",
        numbers={"grace_days": grace, "milestone_ids": tuple(m.id for m, _ in overdue),
                 "days_past_target": tuple(days for _, days in overdue)},
        reason=f"Milestone overdue (grace {grace} days): {listed}")


def stall_5(progress: EpisodeProgress) -> StallFlag | None:
    """"Over budget": more sessions used than expected and the discharge criteria not met."""
    if progress.sessions_used <= progress.expected_max_sessions or (
            progress.discharge_criteria_met):
        return None
    return StallFlag(
        rule="STALL-5", due_reason="progress_stalled",
        numbers={"sessions_used": progress.sessions_used,
                 "expected_max_sessions": progress.expected_max_sessions},
        reason=(f"Over budget: {progress.sessions_used} sessions used of "
                f"{progress.expected_max_sessions} expected, discharge criteria not met"))


def _pain_bar(measure: TrackedMeasure, thresholds: StallThresholds) -> Decimal:
    # The configured points play the MCID's part for pain; the noise guard still applies.
    points = _dec(thresholds.pain_worse_points)
    mdc = measure.rule.mdc
    return points if mdc is None else max(points, _dec(mdc))


def _dec(value: float) -> Decimal:
    # Through str: the number as written (3.7), not its binary expansion.
    return Decimal(str(value))
