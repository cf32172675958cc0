"""The organization's plan rule set (CLINICAL.md §6): every number CLINICAL.md marks DEFAULT,
and each measure's direction, MCID and MDC, as one versioned value. A clinic's clinical lead
may change any of them; each change is a new version, and every decision plan records says
which version it used (§7).

Pure: no I/O. The versions are stored as events of the organization's ``plan-rules`` stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.problems import RuleViolationError
from plan.domain.progression import ProgressionThresholds
from plan.domain.stalls import MeasureRule, StallThresholds


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DischargeTarget(_Frozen):
    """A DEFAULT end point for one PROM score ("LEFS ≥ 70", §5): at least this for a
    higher_better score, at most this for a lower_better one."""

    score: str = Field(min_length=1, examples=["lefs"])  # the score's key ("koos_adl")
    target: float = Field(allow_inf_nan=False)


class CriteriaThresholds(_Frozen):
    """The §2/§6 pass marks drafted criteria are built with."""

    lsi_pass: float = Field(default=90, gt=0, le=150)
    stage2_lsi_pass: float = Field(default=85, gt=0, le=150)  # §3.3 stage 2: "LSI ≥80–85%"
    ybal_ant_cm: float = Field(default=4, gt=0)
    heel_raise_min: int = Field(default=25, ge=1)
    prior_load_pct: float = Field(default=90, gt=0, le=200)
    psfs_item_discharge: float = Field(default=8, ge=0, le=10)
    pain_max_stage1: float = Field(default=3, ge=0, le=10)
    # §5 stage 1: "program done ≥80% of days".
    adherence_pct_stage1: float = Field(default=80, gt=0, le=100)
    # A tuple, not a dict, so the rule set stays hashable like the rest of it.
    discharge_targets: tuple[DischargeTarget, ...] = (DischargeTarget(score="lefs", target=70),)
    acute_weeks_cutoff: float = Field(default=12, gt=0)
    tsk_high: float = Field(default=37, ge=17, le=68)

    def discharge_target(self, score: str) -> float | None:
        return next((t.target for t in self.discharge_targets if t.score == score), None)


# §1, as per-measure configuration (the caveat at the top of CLINICAL.md): direction, the
# improvement MCID, the MDC where published and the relative MCID where one is quoted.
DEFAULT_MEASURES: tuple[MeasureRule, ...] = (
    MeasureRule(measure="nprs", direction="lower_better", mcid=2, mdc=1.8, mcid_pct=30),
    MeasureRule(measure="lefs", direction="higher_better", mcid=9, mdc=9),
    MeasureRule(measure="odi", direction="lower_better", mcid=10, mdc=10, mcid_pct=30),
    MeasureRule(measure="ndi", direction="lower_better", mcid=7.5, mdc=10.2),
    MeasureRule(measure="quickdash", direction="lower_better", mcid=14, mdc=12.85),
    MeasureRule(measure="psfs", direction="higher_better", mcid=2, mdc=2),
    MeasureRule(measure="koos", score="koos_pain", direction="higher_better", mcid=11.3),
    MeasureRule(measure="koos", score="koos_symptoms", direction="higher_better", mcid=12.1),
    MeasureRule(measure="koos", score="koos_adl", direction="higher_better", mcid=10.2),
    MeasureRule(measure="koos", score="koos_sport_rec", direction="higher_better", mcid=15.5),
    MeasureRule(measure="koos", score="koos_qol", direction="higher_better", mcid=13.2),
    MeasureRule(measure="visa_a", direction="higher_better", mcid=14),
    MeasureRule(measure="visa_p", direction="higher_better", mcid=13),
    MeasureRule(measure="spadi", direction="lower_better", mcid=10),
)


class UnknownMeasureRuleError(RuleViolationError):
    type_slug = "unknown-measure-rule"
    title = "The rule set has no direction or MCID for this measure"


class PlanRules(_Frozen):
    """One version of an organization's plan numbers."""

    version: int = Field(default=1, ge=1)
    stalls: StallThresholds = StallThresholds()
    progression: ProgressionThresholds = ProgressionThresholds()
    criteria: CriteriaThresholds = CriteriaThresholds()
    measures: tuple[MeasureRule, ...] = DEFAULT_MEASURES

    def measure_rule(self, measure: str, score: str | None = None) -> MeasureRule | None:
        """The rule for one score: the subscale's own (KOOS), else the measure's."""
        key = score if score not in (None, measure) else None
        for rule in self.measures:
            if rule.measure == measure and rule.score == key:
                return rule
        return None

    def require_measure_rule(self, measure: str, score: str | None = None) -> MeasureRule:
        rule = self.measure_rule(measure, score)
        if rule is None:
            raise UnknownMeasureRuleError(
                f"no MCID or direction for {score or measure} in rule set v{self.version}",
                measure=measure, score=score)
        return rule


DEFAULT_RULES = PlanRules()


# -- the versioned stream ----------------------------------------------------------------

class RulesChanged(_Frozen):
    event_type: ClassVar[str] = "kinetic.plan.rules.changed.v1"
    tenant_id: UUID
    rules: PlanRules
    changed_by: UUID
    changed_at: datetime


class ChangeRules(_Frozen):
    tenant_id: UUID
    rules: PlanRules  # its version is assigned here, not taken from the caller
    changed_by: UUID
    now: datetime


EVENT_TYPES = {RulesChanged.event_type: RulesChanged}
INITIAL = DEFAULT_RULES


def evolve(state: PlanRules, event: RulesChanged) -> PlanRules:
    return event.rules


def decide(command: ChangeRules, state: PlanRules) -> list[RulesChanged]:
    rules = command.rules.model_copy(update={"version": state.version + 1})
    return [RulesChanged(tenant_id=command.tenant_id, rules=rules,
                         changed_by=command.changed_by, changed_at=command.now)]
