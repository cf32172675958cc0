"""The organization's clinical numbers: CLINICAL.md marks them DEFAULT, so each
organization may change them, and the software keeps every version, who changed it and
when. Evaluations record the version their scores and verdicts were judged by.

Overrides only: a measure score or finding threshold the organization has not changed
reads as the catalog's default.

A measure override is keyed by what a reassessment reads: ``"<measure>:<score>"`` for one
score, or the measure's code alone for its primary score (``"lefs"``, ``"psfs"`` for the
PSFS mean). A key no score reads is refused (422), naming the valid ones, instead of being
kept and silently doing nothing: an unknown measure or score, the code of a measure without
a primary score (``"koos"``: each subscale is its own key) and any key of a measure never
compared with a baseline (GROC). So is a second key for a score already set.

The NDI reports one total on two scales (0–50 and 0–100 %). Its numbers are given once, on
either scale (``"ndi"``, ``"ndi:ndi"`` or ``"ndi:ndi_pct"``), and hold for both, the other
scale's rescaled (× 2 or ÷ 2): an override of one scale alone would read one change two
ways in the same reassessment. Rescaling rather than refusing a single-scale override lets
the clinic use the scale it thinks in, makes the two scales unable to disagree, and also
mends rule sets recorded before this rule with only ``"ndi"``. Two NDI keys are refused
like any second key for one score.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from assessment.domain import measures
from assessment.domain.episode import EpisodeThresholds
from assessment.domain.errors import (
    DuplicateThresholdError,
    UnknownMeasureError,
    UnknownThresholdKeyError,
)
from assessment.domain.findings import FindingThresholds
from assessment.domain.measures import MeasureThresholds
from assessment.domain.measures.catalog import same_total


class RuleSetChanged(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str] = "kinetic.assessment.ruleset.changed.v1"
    organization_id: str
    version: int = Field(ge=2)
    measures: dict[str, MeasureThresholds]  # "lefs", or "koos:koos_pain" for one score
    findings: FindingThresholds
    # Added later: a change recorded before it kept §3.1's defaults.
    episode: EpisodeThresholds = EpisodeThresholds()
    changed_by: str
    changed_at: datetime


class ChangeRuleSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    organization_id: str
    measures: dict[str, MeasureThresholds] = Field(default_factory=dict)
    findings: FindingThresholds = FindingThresholds()
    episode: EpisodeThresholds = EpisodeThresholds()
    changed_by: str
    now: datetime


class RuleSet(BaseModel):
    """Version 1 is the catalog's defaults."""

    model_config = ConfigDict(frozen=True)
    version: int = 1
    measures: dict[str, MeasureThresholds] = Field(default_factory=dict)
    findings: FindingThresholds = FindingThresholds()
    episode: EpisodeThresholds = EpisodeThresholds()  # §3.1's cut-offs (typing the episode)
    changed_by: str | None = None
    changed_at: datetime | None = None

    def thresholds(self, definition: measures.MeasureDefinition, score: str
                   ) -> MeasureThresholds | None:
        """The organization's numbers for one score, else the catalog's. An override of the
        same total on another scale (NDI %) holds too, rescaled."""
        spec = definition.score_spec(score)
        for key, on in _keys_setting(definition, score):
            if (override := self.measures.get(key)) is not None:
                other = definition.score_spec(on)
                if spec is None or other is None or on == score:
                    return override
                return _rescaled(override, Decimal(str(spec.high)) / Decimal(str(other.high)))
        return measures.thresholds_for(definition, score)


INITIAL = RuleSet()
EVENT_TYPES = {RuleSetChanged.event_type: RuleSetChanged}


def evolve(state: RuleSet, event: RuleSetChanged) -> RuleSet:
    return RuleSet(version=event.version, measures=event.measures, findings=event.findings,
                   episode=event.episode, changed_by=event.changed_by,
                   changed_at=event.changed_at)


def decide(command: ChangeRuleSet, state: RuleSet) -> list[RuleSetChanged]:
    _check_keys(command.measures)
    if (command.measures, command.findings, command.episode) == (
            state.measures, state.findings, state.episode):
        return []
    return [RuleSetChanged(organization_id=command.organization_id, version=state.version + 1,
                           measures=command.measures, findings=command.findings,
                           episode=command.episode, changed_by=command.changed_by,
                           changed_at=command.now)]


# -- which score an override key sets ------------------------------------------------------

def _sets(definition: measures.MeasureDefinition, key: str) -> tuple[str, ...]:
    """The scores a reassessment reads ``key``'s numbers for (none: the key does nothing)."""
    if not definition.compare_to_baseline:
        return ()  # GROC is itself a rating of change: never compared, never judged
    if key == definition.code:
        return tuple(s.code for s in definition.scores
                     if s.code in (definition.code, definition.primary_score))
    code, _, score = key.partition(":")
    return (score,) if code == definition.code and definition.score_spec(score) else ()


def valid_keys(definition: measures.MeasureDefinition) -> tuple[str, ...]:
    """Every override key some score of the measure reads."""
    keys = [definition.code, *(f"{definition.code}:{s.code}" for s in definition.scores)]
    return tuple(k for k in keys if _sets(definition, k))


def _keys_setting(definition: measures.MeasureDefinition, score: str
                  ) -> Iterator[tuple[str, str]]:
    """The keys that may set ``score``, the score's own first, each with the score it names
    (another scale of the same total for the NDI)."""
    for on in sorted(same_total(definition, score), key=lambda s: s != score):
        yield f"{definition.code}:{on}", on
        if on in _sets(definition, definition.code):
            yield definition.code, on


def _rescaled(thresholds: MeasureThresholds, factor: Decimal) -> MeasureThresholds:
    def scaled(value: float) -> float:
        return float(Decimal(str(value)) * factor)

    # Points scale with the range; a relative MCID (% of the baseline) does not.
    return thresholds.model_copy(update={
        "mcid": scaled(thresholds.mcid),
        "mdc": None if thresholds.mdc is None else scaled(thresholds.mdc)})


def _check_keys(overrides: Mapping[str, MeasureThresholds]) -> None:
    set_by: dict[tuple[str, frozenset[str]], str] = {}
    for key in overrides:
        code = key.split(":", 1)[0]
        definition = measures.CATALOG.get(code)
        if definition is None:
            every = [k for d in measures.CATALOG.values() for k in valid_keys(d)]
            raise UnknownMeasureError(
                f"no measure {code!r} in the catalog for {key!r}: the measures are "
                f"{', '.join(measures.CATALOG)}", measure=code, key=key, valid=every)
        valid = valid_keys(definition)
        targets = _sets(definition, key)
        if not targets:
            reason = (f"{definition.name} already rates change and is never compared with a "
                      "baseline, so no threshold of it is read" if not valid else
                      f"no score reads {key!r}; {definition.name}'s keys are "
                      f"{', '.join(valid)}")
            raise UnknownThresholdKeyError(reason, key=key, valid=list(valid))
        for score in targets:
            total = (code, same_total(definition, score))
            if (first := set_by.setdefault(total, key)) != key:
                scores = " / ".join(sorted(total[1]))
                raise DuplicateThresholdError(
                    f"{first!r} and {key!r} both set {definition.name} {scores}: give its "
                    "numbers once", keys=[first, key])
