"""Episode typing, CLINICAL.md §3.1 (MODEL): the type follows from the criteria the clinician
records at the assessment, so the software checks the therapist's choice against them.

    chronic_multifactor  symptoms ≥ 12 weeks, or ≥ 2 drivers, or TSK-17 > 37
    acute_clear_driver   symptoms < 12 weeks and a single primary driver

The 12 weeks and the 37 are DEFAULTs an organization may change (§6 ``acute_weeks_cutoff``,
``tsk_high``), so they travel in its rule set. Pure: the day the duration is counted to
arrives with the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from assessment.domain.errors import OnsetInFutureError
from assessment.domain.measures.catalog import TSK17
from kinetic_contracts.assessment.v1.events import EpisodeType

# The onset is a date at the clinic, the day it is compared with is UTC's: a clinic east of
# Greenwich may already be a day ahead, so "today" there is one day after UTC's date.
_CLOCK_SLACK = timedelta(days=1)


def _catalog_tsk_high() -> float:
    # One source for the 37: the TSK-17's own "high kinesiophobia" cut-off in the catalog.
    return next(c.threshold for s in TSK17.scores for c in s.cutoffs
                if c.code == "high_kinesiophobia")


class EpisodeThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    acute_weeks_cutoff: float = Field(default=12, gt=0, le=520,
                                      description="Symptoms this many weeks or longer: chronic")
    tsk_high: float = Field(default_factory=_catalog_tsk_high, ge=17, le=68,
                            description="A TSK-17 total above this: chronic")


@dataclass(frozen=True)
class EpisodeFacts:
    """What §3.1 reads. ``symptom_weeks`` or ``tsk`` None: not recorded, which proves nothing
    either way."""

    symptom_weeks: float | None
    driver_count: int
    tsk: float | None


@dataclass(frozen=True)
class EpisodeTyping:
    """The type the facts decide (None: they do not decide it, see ``type_episode``) and
    the criteria behind it, in words a therapist can check."""

    episode_type: EpisodeType | None
    because: tuple[str, ...]


def symptom_weeks(onset: date, on: date) -> float:
    """Weeks from the onset to ``on``; an onset after that day is refused."""
    if onset > on + _CLOCK_SLACK:
        raise OnsetInFutureError(f"the symptoms cannot begin on {onset}, after {on}",
                                 onset=onset.isoformat())
    return max((on - onset).days, 0) / 7


def _weeks(weeks: float) -> str:
    # Whole weeks, rounded down: 11.9 weeks must not read as "12 weeks (< 12)".
    return str(int(weeks))


def type_episode(facts: EpisodeFacts, thresholds: EpisodeThresholds) -> EpisodeTyping:
    """Any one chronic criterion makes the episode chronic_multifactor. Acute needs both
    of its criteria shown: under 12 weeks *and* one driver. When no chronic criterion is met
    and the onset was not recorded, the duration is unknown and the facts decide nothing;
    the therapist's type stands (symptoms may well have lasted 12 weeks or more)."""
    chronic: list[str] = []
    if facts.symptom_weeks is not None and facts.symptom_weeks >= thresholds.acute_weeks_cutoff:
        chronic.append(f"symptoms for {_weeks(facts.symptom_weeks)} weeks "
                       f"(≥ {thresholds.acute_weeks_cutoff:g})")
    if facts.driver_count >= 2:
        chronic.append(f"{facts.driver_count} drivers")
    if facts.tsk is not None and facts.tsk > thresholds.tsk_high:
        chronic.append(f"TSK-17 {facts.tsk:g} (> {thresholds.tsk_high:g})")
    if chronic:
        return EpisodeTyping("chronic_multifactor", tuple(chronic))
    if facts.symptom_weeks is None:
        return EpisodeTyping(None, ("no symptom onset recorded",))
    return EpisodeTyping("acute_clear_driver", (
        f"symptoms for {_weeks(facts.symptom_weeks)} weeks "
        f"(< {thresholds.acute_weeks_cutoff:g})",
        "a single driver"))
