"""Booking's own settings (environment variables, prefix ``KINETIC_BOOKING_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kinetic_infra.settings import settings_or_exit


class BookingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINETIC_BOOKING_", extra="ignore")

    reminder_lead_minutes: int = Field(
        default=24 * 60, ge=1, le=14 * 24 * 60,
        description="How long before a session appointment.reminder_due is published")


def booking_settings() -> BookingSettings:
    return settings_or_exit(BookingSettings, "booking")
