"""What an outcome measure is, as data: its items, the scores it reports and how each score is
computed, its direction, and the default thresholds for reading a change.

A measure reports one or more named scores (KOOS: one per subscale; NDI: the same total on
its 0–50 and 0–100 % scales). Each score names the items it is computed from, the rule that
computes it and how many of those items must be answered. The arithmetic lives in
``scoring.py``; here is only the shape, checked once when the catalog is built.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["higher_better", "lower_better"]

# How a score is computed from the points of its answered items (reverse-scored items are
# turned round first; a one-of question counts once, as the part that was answered):
#   sum               the points added up (LEFS, TSK-17, VISA, a single-item measure)
#   percent           (mean − item min) / (item max − item min) × 100: 0 = best possible
#                     for a lower_better measure (ODI, NDI %, SPADI, QuickDASH)
#   inverted_percent  100 − percent: KOOS, where items score problems but 100 = no problems
#   prorated_sum      the sum scaled up to every item: sum × items / answered (NDI 0–50)
#   mean              the mean of the answered items (PSFS)
ScoringRule = Literal["sum", "percent", "inverted_percent", "prorated_sum", "mean"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MeasureThresholds(_Frozen):
    """How big a change must be to matter. The catalog supplies defaults from the literature
    (CLINICAL.md §1); an organization may override them, so they travel separately from the
    definition and the change functions take them as an argument."""

    mcid: float = Field(gt=0, description="Minimal clinically important difference, in points")
    mdc: float | None = Field(default=None, gt=0,
                              description="Minimal detectable change; None where unpublished")
    mcid_pct: float | None = Field(default=None, gt=0, le=100,
                                   description="Relative MCID, % of the baseline score")


class Item(_Frozen):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str  # a short paraphrase, never the instrument's own wording
    low: int
    high: int
    # Only these values, where the form offers fixed points (VISA questions 7 and 8).
    choices: tuple[int, ...] | None = None
    reverse: bool = False  # points = low + high − answer (TSK-17 items 4, 8, 12, 16)
    group: str | None = None  # parts of one question of which exactly one is answered
    patient_named: bool = False  # the patient names the activity (PSFS): a label per answer

    def allows(self, answer: int) -> bool:
        if self.choices is not None:
            return answer in self.choices
        return self.low <= answer <= self.high

    def points(self, answer: int) -> int:
        return self.low + self.high - answer if self.reverse else answer

    def allowed(self) -> str:
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        return f"{self.low}–{self.high}"


class Cutoff(_Frozen):
    """A level of a score that raises a flag (TSK-17 > 37: high kinesiophobia). The threshold
    is a default; ``raised_flags`` takes the organization's value instead."""

    code: str
    label: str
    op: Literal[">", ">=", "<", "<="]
    threshold: float


class ScoreSpec(_Frozen):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    unit: str  # "points", "%"
    items: tuple[str, ...]
    rule: ScoringRule
    low: float
    high: float
    decimals: int = Field(ge=0, le=2)  # as the instrument reports it
    # The fewest answered questions (a one-of group counts once) this score needs.
    min_answered: int = Field(ge=1)
    # Scores that must themselves be scored first (SPADI's total needs both subscales).
    requires: tuple[str, ...] = ()
    # False: the score is simply left out when its items are unanswered (an unused PSFS
    # activity slot), rather than reported as not scored.
    required: bool = True
    thresholds: MeasureThresholds | None = None  # the catalog's default
    cutoffs: tuple[Cutoff, ...] = ()


class MeasureDefinition(_Frozen):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    version: str
    region: str
    use: str
    direction: Direction
    items: tuple[Item, ...]
    scores: tuple[ScoreSpec, ...]
    # The score a single number stands for (NDI: which scale is reported); None when each
    # score is tracked on its own (KOOS subscales).
    primary_score: str | None
    missing_rule: str  # the published rule for unanswered items, in words
    # False for an anchor that already rates change (GROC): no baseline comparison.
    compare_to_baseline: bool = True
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> MeasureDefinition:
        # Item ids and score codes are separate namespaces: a PSFS activity's own score is
        # keyed by its item id.
        ids = [i.id for i in self.items]
        codes = [s.code for s in self.scores]
        for what, names in (("item ids", ids), ("score codes", codes)):
            if dupes := sorted(k for k, n in Counter(names).items() if n > 1):
                raise ValueError(f"{self.code}: duplicate {what} {dupes}")
        seen: set[str] = set()
        for s in self.scores:
            if unknown := set(s.items) - set(ids):
                raise ValueError(f"{self.code}.{s.code}: unknown items {sorted(unknown)}")
            if unknown := set(s.requires) - seen:
                raise ValueError(f"{self.code}.{s.code}: requires {sorted(unknown)} first")
            seen.add(s.code)
        if self.primary_score is not None and self.primary_score not in codes:
            raise ValueError(f"{self.code}: no score {self.primary_score!r}")
        return self

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def score_spec(self, code: str) -> ScoreSpec | None:
        return next((s for s in self.scores if s.code == code), None)
