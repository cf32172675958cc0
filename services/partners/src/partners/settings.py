"""The partners service's own settings (environment variables, prefix ``KINETIC_PARTNERS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kinetic_infra.settings import settings_or_exit


class PartnersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINETIC_PARTNERS_", extra="ignore")

    allow_loopback_http: bool = Field(
        default=False,
        description="Accept http:// webhooks on this machine (127.0.0.1, localhost): for "
                    "development and tests only; production webhooks are https:// only")
    nats_session_seconds: int = Field(
        default=900, ge=5,
        description="How long the NATS server admits a partner's connection before it "
                    "asks again (the user JWT's expiry): a replaced NATS key stops an "
                    "open connection within this time; the client reconnects with its "
                    "current key and goes on where it was")
    nats_account: str = Field(
        default="KINETIC",
        description="The NATS account partner connections are admitted to (the services' "
                    "account, where the PARTNERS stream is)")


def partners_settings() -> PartnersSettings:
    return settings_or_exit(PartnersSettings, "partners")
