"""Criteria: one measurable statement a stage exit or a discharge is judged by (CLINICAL.md
§3.3, §3.5). A criterion reads one number (a PROM score, a finding's index, or a task the
clinician records), compares it with a target, and may also ask for a gain from baseline
("LEFS ≥ 70 and at least +9 from baseline", §5). Pure: results are passed in.

Plan does not import assessment: the numbers arrive as assessment's public event data
(``MeasureScore``, ``FindingIndex``), and ``read_value`` picks a criterion's number out of it.
Values are compared as decimals at the precision entered, so 5.7 − 3.7 is exactly 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from kinetic_contracts.assessment.v1.events import FindingIndex, MeasureScore
from kinetic_contracts.problems import RuleViolationError

CriterionKind = Literal["functional", "performance", "sport_work", "pain", "other"]
Comparison = Literal[">=", "<=", ">", "<"]
Source = Literal["measure", "finding", "task"]

# Free text a clinician must write (a reason, a justification): blank is not text.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]

# Measures that rate pain. A criterion that reads one is a pain criterion whatever else it is
# called, so relabelling "NPRS ≤ 2" as functional cannot slip pain reduction in as the
# functional end point (§3.5: pain reduction alone never satisfies discharge).
PAIN_MEASURES = frozenset({"nprs"})

# Which kinds may read which sources (§3.5): a functional criterion is a PROM target, a
# performance criterion a §2 test (a finding, or a recorded task such as a run progression),
# a sport/work criterion a PSFS item or a task.
_SOURCES: dict[CriterionKind, frozenset[Source]] = {
    "functional": frozenset({"measure"}),
    "performance": frozenset({"finding", "task"}),
    "sport_work": frozenset({"measure", "task"}),
    "pain": frozenset({"measure", "finding", "task"}),
    "other": frozenset({"measure", "finding", "task"}),
}


class BaselineRequiredError(RuleViolationError):
    type_slug = "baseline-required"
    title = "The criterion asks for a gain from baseline, and no baseline was given"


class DuplicateCriterionError(RuleViolationError):
    type_slug = "duplicate-criterion"
    title = "Two criteria have the same id"


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.:-]*$", max_length=100,
                    examples=["lefs_discharge"])
    kind: CriterionKind
    label: str = Field(min_length=1, max_length=200,
                       examples=["LEFS ≥ 70 and at least +9 from baseline"])
    source: Source
    # What it reads: the measure code ("lefs", "psfs"), the finding id
    # ("strength:hip_abduction") or a task code ("run_45min_pre_injury_pace").
    ref: str = Field(min_length=1, max_length=100)
    # The score within the measure ("koos_pain", a PSFS activity's item id; default: the
    # measure's own score, keyed by its code) or the finding's index ("lsi_pct").
    key: str | None = Field(default=None, min_length=1, max_length=100)
    op: Comparison
    # Finite: a NaN target cannot be compared with anything, so every judgement would fail.
    target: float = Field(allow_inf_nan=False)
    # "And at least +N from baseline", in the good direction the comparison names.
    min_gain: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Criterion:
        if self.source not in _SOURCES[self.kind]:
            raise ValueError(f"a {self.kind} criterion cannot read a {self.source}")
        if self.source == "measure" and self.ref in PAIN_MEASURES and self.kind != "pain":
            raise ValueError(f"{self.ref} rates pain: the criterion's kind is pain")
        if self.source == "finding" and self.key is None:
            raise ValueError("a finding criterion names the index it reads (key)")
        return self

    @property
    def higher_is_better(self) -> bool:
        # The target says which way is good: nobody writes "≥ 70" and means a fall is a gain.
        return self.op in (">=", ">")

    @property
    def score_key(self) -> str:
        return self.key if self.key is not None else self.ref


class CriterionResult(BaseModel):
    """One observed value for a criterion, with the baseline when the criterion needs one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    criterion_id: str
    value: float = Field(allow_inf_nan=False)
    baseline: float | None = Field(default=None, allow_inf_nan=False)


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)
    criterion: Criterion
    result: CriterionResult | None  # None: nothing recorded yet, which never passes
    met: bool


def met(criterion: Criterion, observed_value: float, baseline: float | None = None) -> bool:
    """Whether one observed value passes the criterion: the comparison with the target and,
    when asked for, the gain from baseline in the good direction."""
    value, target = _dec(observed_value), _dec(criterion.target)
    passes = {">=": value >= target, "<=": value <= target,
              ">": value > target, "<": value < target}[criterion.op]
    if criterion.min_gain is None:
        return passes
    if baseline is None:
        raise BaselineRequiredError(
            f"{criterion.label} [{criterion.id}]: needs the baseline to judge the gain",
            criterion=criterion.id)
    gain = value - _dec(baseline) if criterion.higher_is_better else _dec(baseline) - value
    return passes and gain >= _dec(criterion.min_gain)


def judge(criteria: Sequence[Criterion], results: Iterable[CriterionResult]
          ) -> tuple[Verdict, ...]:
    """A verdict per criterion. ``results`` in the order recorded: the latest result for a
    criterion is the one that counts (a criterion met in week 3 and lost in week 6 is not
    met); a criterion without a result is not met."""
    latest = {r.criterion_id: r for r in results}
    verdicts = []
    for c in criteria:
        result = latest.get(c.id)
        ok = result is not None and met(c, result.value, result.baseline)
        verdicts.append(Verdict(criterion=c, result=result, met=ok))
    return tuple(verdicts)


def unmet(verdicts: Iterable[Verdict]) -> tuple[Criterion, ...]:
    return tuple(v.criterion for v in verdicts if not v.met)


def read_value(criterion: Criterion, measures: Iterable[MeasureScore],
               findings: Iterable[FindingIndex]) -> float | None:
    """The criterion's number in assessment's event data, or None when it is not there. A task
    is recorded by the clinician in plan, never by assessment, so it is always None here."""
    if criterion.source == "measure":
        for m in measures:
            if m.measure == criterion.ref and criterion.score_key in m.scores:
                return m.scores[criterion.score_key]
    elif criterion.source == "finding":
        for f in findings:
            if f.finding_id == criterion.ref and f.index == criterion.key:
                return f.value
    return None


def unique_ids(criteria: Sequence[Criterion]) -> None:
    """Refuse two criteria with one id: a result could not say which of them it is."""
    seen: set[str] = set()
    for c in criteria:
        if c.id in seen:
            raise DuplicateCriterionError(f"two criteria have the id {c.id!r}",
                                          criterion=c.id)
        seen.add(c.id)


def _dec(value: float) -> Decimal:
    # Through str: the number as written (5.7), not its binary expansion.
    return Decimal(str(value))
