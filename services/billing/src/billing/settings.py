"""Billing's own settings (environment variables, prefix ``KINETIC_BILLING_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kinetic_infra.settings import settings_or_exit


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINETIC_BILLING_", extra="ignore")

    day_seconds: float = Field(
        default=86_400, gt=0,
        description="Length of a day for invoice reminders and due dates in "
                    "SessionChargeWorkflow (shortened in tests)")
    reminder_days: list[int] = Field(
        default=[7, 12],
        description="Days after issue on which an unpaid invoice's reminders fall due (JSON "
                    "list); those on or after the due date are skipped")
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The payment provider's webhook signing secret; unset (or empty), the "
                    "payment-provider webhook accepts nothing (no well-known default signs "
                    "a payment)")
    webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="A signed webhook older than this is refused (replay)")


    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes an unset variable through as the empty string.
        return None if value in ("", None) else value


def billing_settings() -> BillingSettings:
    return settings_or_exit(BillingSettings, "billing")
