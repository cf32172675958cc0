"""Billing's own settings (environment variables, prefix ``KINETIC_BILLING_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
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
    webhook_secret: SecretStr = Field(
        default=SecretStr("kinetic-development-webhook-secret"),
        description="The payment provider's webhook signing secret")
    webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="A signed webhook older than this is refused (replay)")


def billing_settings() -> BillingSettings:
    return settings_or_exit(BillingSettings, "billing")
