"""Plan's own settings (environment variables, prefix ``KINETIC_PLAN_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kinetic_infra.settings import settings_or_exit


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
    return settings_or_exit(PlanSettings, "plan")
