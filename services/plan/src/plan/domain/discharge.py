"""The end of an episode: the expected course by episode type (CLINICAL.md §3.1), what a plan
needs before it is activated, and the discharge rule (§3.5). Pure: results, the clinician and
the time are passed in.

§3.5: ``discharge_allowed = all(criterion.met for criterion in plan.discharge_criteria) OR
override``. Pain reduction alone never satisfies discharge, so the criteria must include a
functional one (a PROM target), a performance one (a §2 test) and a sport/work one (a PSFS item
or task); pain criteria count toward none of these. A set without all three is refused even
when every criterion in it is met.

An episode can also end before its plan is active (referred out, the patient withdrew,
nothing to treat): that is a ``Closure`` with its reason, not a discharge, since no criteria
were set to be met or overridden.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.assessment.v1.events import EpisodeType
from kinetic_contracts.problems import RuleViolationError
from plan.domain.criteria import (
    Criterion,
    CriterionKind,
    CriterionResult,
    Text,
    Verdict,
    judge,
    unique_ids,
    unmet,
)

OverrideReason = Literal["patient_goal_met_early", "patient_withdrew", "referred_out",
                         "plateau_accepted", "other"]
# The kinds a discharge needs one of each (§3.5). "pain" is deliberately not among them.
REQUIRED_KINDS: tuple[CriterionKind, ...] = ("functional", "performance", "sport_work")
# §6 DEFAULTs for typing an episode.
ACUTE_WEEKS_CUTOFF = 12
TSK_HIGH = 37


class DischargeCriteriaIncompleteError(RuleViolationError):
    type_slug = "discharge-criteria-incomplete"
    title = ("Discharge criteria need a functional, a performance and a sport/work criterion; "
             "pain alone never satisfies discharge")


class DischargeRefusedError(RuleViolationError):
    type_slug = "discharge-criteria-unmet"
    title = "The discharge criteria are not all met and there is no override"


class PlanNotActivatableError(RuleViolationError):
    type_slug = "plan-not-activatable"
    title = "A plan needs discharge criteria, an expected session count and a target date"


class EpisodeFactsError(RuleViolationError):
    type_slug = "episode-facts"
    title = "The episode cannot be typed from these facts"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- §3.1 episode typing and expected course ------------------------------------------------

class ExpectedCourse(_Frozen):
    episode_type: EpisodeType
    sessions_min: int
    sessions_max: int  # STALL-5's expected max unless the plan says otherwise
    span_min: int
    span_max: int
    span_unit: Literal["weeks", "months"]  # as §3.1 states it; months are not whole weeks


_COURSES: dict[EpisodeType, ExpectedCourse] = {
    "acute_clear_driver": ExpectedCourse(episode_type="acute_clear_driver", sessions_min=6,
                                         sessions_max=8, span_min=4, span_max=8,
                                         span_unit="weeks"),
    "chronic_multifactor": ExpectedCourse(episode_type="chronic_multifactor", sessions_min=12,
                                          sessions_max=20, span_min=3, span_max=5,
                                          span_unit="months"),
}


def expected_course(episode_type: EpisodeType) -> ExpectedCourse:
    return _COURSES[episode_type]


def classify_episode(symptom_weeks: float, driver_count: int, tsk: float | None, *,
                     acute_weeks_cutoff: float = ACUTE_WEEKS_CUTOFF,
                     tsk_high: float = TSK_HIGH) -> EpisodeType:
    """§3.1: chronic_multifactor when symptoms ≥ 12 weeks, or ≥ 2 drivers, or TSK-17 > 37;
    otherwise (< 12 weeks and a single driver) acute_clear_driver. ``tsk`` None: not measured,
    which raises no flag. Typing needs at least one driver: without one there is nothing the
    plan treats."""
    if driver_count < 1:
        raise EpisodeFactsError("record the driver before typing the episode",
                                driver_count=driver_count)
    if symptom_weeks < 0:
        raise EpisodeFactsError("symptom duration cannot be negative",
                                symptom_weeks=symptom_weeks)
    if symptom_weeks >= acute_weeks_cutoff or driver_count >= 2 or (
            tsk is not None and tsk > tsk_high):
        return "chronic_multifactor"
    return "acute_clear_driver"


# -- activation -----------------------------------------------------------------------------

class PlanOfCare(Protocol):
    """What activation reads of a plan; the plan aggregate supplies it."""

    @property
    def discharge_criteria(self) -> Sequence[Criterion]: ...
    @property
    def expected_sessions(self) -> int | None: ...
    @property
    def target_date(self) -> date | None: ...


class Activation(_Frozen):
    allowed: bool
    # What is missing: "discharge_criteria", "discharge_criteria.<kind>", "expected_sessions",
    # "target_date".
    missing: tuple[str, ...]


def can_activate(plan: PlanOfCare) -> Activation:
    """§3.1: a plan is activated only with a stated end point (discharge criteria, complete
    per §3.5), an expected session count and a target date."""
    missing: list[str] = []
    if not plan.discharge_criteria:
        missing.append("discharge_criteria")
    else:
        missing += [f"discharge_criteria.{k}" for k in missing_kinds(plan.discharge_criteria)]
    if plan.expected_sessions is None or plan.expected_sessions < 1:
        missing.append("expected_sessions")
    if plan.target_date is None:
        missing.append("target_date")
    return Activation(allowed=not missing, missing=tuple(missing))


def require_activatable(plan: PlanOfCare) -> None:
    activation = can_activate(plan)
    if not activation.allowed:
        raise PlanNotActivatableError(
            f"the plan cannot be activated; missing: {', '.join(activation.missing)}",
            missing=list(activation.missing))


# -- §3.5 discharge -------------------------------------------------------------------------

def missing_kinds(criteria: Iterable[Criterion]) -> tuple[CriterionKind, ...]:
    """The required kinds the criteria lack. A pain criterion is never one of them."""
    present = {c.kind for c in criteria}
    return tuple(k for k in REQUIRED_KINDS if k not in present)


def validate_discharge_criteria(criteria: Sequence[Criterion]) -> None:
    """Refuse (422) a discharge criteria set without a functional, a performance and a
    sport/work criterion, or with two criteria of one id."""
    unique_ids(criteria)
    if lacking := missing_kinds(criteria):
        raise DischargeCriteriaIncompleteError(
            f"the discharge criteria lack a {', a '.join(k.replace('_', '/') for k in lacking)} "
            f"criterion", missing=list(lacking))


class DischargeOverride(_Frozen):
    """A clinician's decision to discharge with criteria unmet: who, why and when."""

    clinician_id: UUID
    reason_code: OverrideReason
    free_text: Text
    timestamp: datetime


# Why an episode ends before any plan of care was active: no criteria were set to be met or
# overridden, so these are not §3.5's override reasons (those judge an active plan).
ClosureReason = Literal["referred_out", "patient_withdrew", "nothing_to_treat"]


class Closure(_Frozen):
    """An episode closed before its plan was active: why, in words (kept in plan; the public
    event carries the reason code only), the positive red flags of assessment's referral,
    who (None when the referral itself closed it) and when."""

    reason: ClosureReason
    free_text: str = Field(default="", max_length=2000)
    red_flags: tuple[str, ...] = ()
    by: UUID | None = None
    at: datetime


class DischargeDecision(_Frozen):
    allowed: bool
    basis: Literal["criteria_met", "override", "refused"]
    verdicts: tuple[Verdict, ...]
    unmet: tuple[str, ...]  # criterion ids without a passing result
    missing_kinds: tuple[CriterionKind, ...]  # required kinds the criteria set lacks
    override: DischargeOverride | None
    reason: str


def discharge_allowed(criteria: Sequence[Criterion], results: Iterable[CriterionResult],
                      override: DischargeOverride | None = None) -> DischargeDecision:
    """Allowed when every criterion has a passing (latest) result and the set is complete
    (§3.5), or else when a clinician overrides. An override is recorded as given even when
    the criteria alone would have allowed it, so the record says everything that was said."""
    unique_ids(criteria)
    verdicts = judge(criteria, results)
    failing = tuple(c.id for c in unmet(verdicts))
    lacking = missing_kinds(criteria)

    def decision(basis: Literal["criteria_met", "override", "refused"], reason: str
                 ) -> DischargeDecision:
        return DischargeDecision(allowed=basis != "refused", basis=basis, verdicts=verdicts,
                                 unmet=failing, missing_kinds=lacking, override=override,
                                 reason=reason)

    if criteria and not failing and not lacking:
        return decision("criteria_met", "every discharge criterion is met")
    if override is not None:
        return decision("override",
                        f"override by {override.clinician_id} ({override.reason_code}) at "
                        f"{override.timestamp.isoformat()}: {override.free_text}")
    why = []
    if not criteria:
        why.append("the plan states no discharge criteria")
    if lacking and criteria:
        why.append("pain reduction alone never satisfies discharge; the criteria lack a "
                   + ", a ".join(k.replace("_", "/") for k in lacking) + " criterion")
    if failing:
        why.append("not met: " + "; ".join(f"{v.criterion.label} [{v.criterion.id}]"
                                           for v in verdicts if not v.met))
    return decision("refused", "; ".join(why))


def require_discharge(criteria: Sequence[Criterion], results: Iterable[CriterionResult],
                      override: DischargeOverride | None = None) -> DischargeDecision:
    """``discharge_allowed``, raising 422 when it refuses."""
    decision = discharge_allowed(criteria, results, override)
    if not decision.allowed:
        raise DischargeRefusedError(decision.reason, unmet=list(decision.unmet),
                                    missing_kinds=list(decision.missing_kinds))
    return decision
