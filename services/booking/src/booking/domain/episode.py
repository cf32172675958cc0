"""Episode of care: opened at intake with the reason for coming, the symptom site and the
patient's goal; closed when plan publishes the discharge."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from booking.domain.errors import (
    AlreadyExistsError,
    EpisodeNotFoundError,
    LocationNotFoundError,
    PatientNotFoundError,
)
from kinetic_contracts.booking.v1 import events as public
from kinetic_contracts.booking.v1.events import EpisodeClosed


class EpisodeOpened(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str] = "kinetic.booking.episode.opened.v1"

    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    reason: str
    symptom_site: str
    goal: str | None = None
    goal_target_date: date | None = None
    referral: bool = False
    opened_at: datetime

    def to_public(self) -> public.EpisodeOpened:
        return public.EpisodeOpened(
            episode_id=self.episode_id, patient_id=self.patient_id,
            location_id=self.location_id, symptom_site=self.symptom_site,
            referral=self.referral, goal_target_date=self.goal_target_date,
            opened_at=self.opened_at,
        )


class OpenEpisode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    reason: str = Field(min_length=1, max_length=2000)
    symptom_site: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")
    goal: str | None = Field(default=None, max_length=2000)
    goal_target_date: date | None = None
    referral: bool = False
    now: datetime
    patient_exists: bool
    location_exists: bool


class CloseEpisode(BaseModel):
    model_config = ConfigDict(frozen=True)
    episode_id: UUID
    reason: Literal["discharged"]
    now: datetime


class NoEpisode(BaseModel):
    model_config = ConfigDict(frozen=True)


class OpenedEpisode(BaseModel):
    model_config = ConfigDict(frozen=True)
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    closed: bool = False


EpisodeState = NoEpisode | OpenedEpisode
EpisodeEvent = EpisodeOpened | EpisodeClosed
INITIAL: EpisodeState = NoEpisode()
EVENT_TYPES: dict[str, type[EpisodeEvent]] = {
    EpisodeOpened.event_type: EpisodeOpened, EpisodeClosed.event_type: EpisodeClosed}


def evolve(state: EpisodeState, event: EpisodeEvent) -> EpisodeState:
    match event:
        case EpisodeOpened():
            return OpenedEpisode(episode_id=event.episode_id, patient_id=event.patient_id,
                                 location_id=event.location_id)
        case EpisodeClosed():
            assert isinstance(state, OpenedEpisode)
            return state.model_copy(update={"closed": True})
        case _:
            assert_never(event)


def decide(command: OpenEpisode | CloseEpisode, state: EpisodeState) -> list[EpisodeEvent]:
    if isinstance(command, CloseEpisode):
        return _close(command, state)
    if isinstance(state, OpenedEpisode):
        raise AlreadyExistsError(f"episode {command.episode_id} is already open")
    if not command.patient_exists:
        raise PatientNotFoundError(f"patient {command.patient_id} does not exist")
    if not command.location_exists:
        raise LocationNotFoundError(f"location {command.location_id} does not exist")
    return [EpisodeOpened(**command.model_dump(exclude={"now", "patient_exists",
                                                        "location_exists"}),
                          opened_at=command.now)]


def _close(command: CloseEpisode, state: EpisodeState) -> list[EpisodeEvent]:
    if not isinstance(state, OpenedEpisode):
        raise EpisodeNotFoundError(f"episode {command.episode_id} not found")
    if state.closed:
        return []  # a repeated discharge changes nothing
    return [EpisodeClosed(episode_id=state.episode_id, patient_id=state.patient_id,
                          location_id=state.location_id, reason=command.reason,
                          closed_at=command.now)]
