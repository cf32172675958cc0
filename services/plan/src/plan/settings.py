"""Plan's own settings (environment variables, prefix ``KINETIC_PLAN_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlanSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINETIC_PLAN_", extra="ignore")

    day_seconds: float = Field(
        default=86_400, gt=0,
        description="Length of a day on an episode's clock: milestone timers and the weeks "
                    "the stall rules count run on it (shortened in tests)")
    max_history_events: int = Field(
        default=10_000, ge=20,
        description="An EpisodeOfCareWorkflow continues as new past this many history events")


def plan_settings() -> PlanSettings:
    try:
        return PlanSettings()
    except Exception as exc:  # pydantic's message names the variable
        raise SystemExit(f"kinetic: invalid plan configuration: {exc}") from None
