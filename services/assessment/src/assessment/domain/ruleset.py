"""The organization's clinical numbers: CLINICAL.md marks them DEFAULT, so each
organization may change them, and the software keeps every version, who changed it and
when. Evaluations record the version their scores and verdicts were judged by.

Overrides only: a measure score or finding threshold the organization has not changed
reads as the catalog's default.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from assessment.domain import measures
from assessment.domain.episode import EpisodeThresholds
from assessment.domain.errors import UnknownMeasureError
from assessment.domain.findings import FindingThresholds
from assessment.domain.measures import MeasureThresholds


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
        return (self.measures.get(f"{definition.code}:{score}")
                or (self.measures.get(definition.code) if score in (
                    definition.code, definition.primary_score) else None)
                or measures.thresholds_for(definition, score))


INITIAL = RuleSet()
EVENT_TYPES = {RuleSetChanged.event_type: RuleSetChanged}


def evolve(state: RuleSet, event: RuleSetChanged) -> RuleSet:
    return RuleSet(version=event.version, measures=event.measures, findings=event.findings,
                   episode=event.episode, changed_by=event.changed_by,
                   changed_at=event.changed_at)


def decide(command: ChangeRuleSet, state: RuleSet) -> list[RuleSetChanged]:
    for key in command.measures:
        if key.split(":", 1)[0] not in measures.CATALOG:
            raise UnknownMeasureError(f"no measure {key!r} in the catalog", measure=key)
    if (command.measures, command.findings, command.episode) == (
            state.measures, state.findings, state.episode):
        return []
    return [RuleSetChanged(organization_id=command.organization_id, version=state.version + 1,
                           measures=command.measures, findings=command.findings,
                           episode=command.episode, changed_by=command.changed_by,
                           changed_at=command.now)]
