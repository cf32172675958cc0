"""Process settings, from environment variables only (prefix ``KINETIC_``).

Every deployable reads the same names; the local stack runner sets them per process.
A missing or malformed value fails at start-up with the variable's name, before any
connection is attempted.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINETIC_", extra="ignore")

    service: str = Field(description="Which service this process runs")
    database_url: str = Field(description="postgresql://user:password@host:port/database")
    nats_url: str = Field(default="nats://127.0.0.1:4222",
                          description="NATS server URLs, comma-separated (a cluster); "
                                      "nats://user:password@host:port for credentials")
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="Replicas of each JetStream stream Kinetic creates "
                                           "(3 on a three-node cluster)")
    nats_auth_callout_seed: str = Field(
        default="", description="The nkey seed (S…) that signs the NATS server's auth callout "
                                "answers; only the service that answers it is given one")
    temporal_address: str = Field(default="127.0.0.1:7233",
                                  description="The Temporal frontend, host:port")
    temporal_namespace: str = Field(default="default",
                                    description="The Temporal namespace of the workflows")
    oidc_issuer: str = Field(default="", description="The token issuer (iss) the API accepts")
    oidc_audience: str = Field(default="kinetic", description="The audience (aud) tokens must name")
    oidc_jwks_url: str = Field(default="", description="Where the issuer publishes its keys")
    oidc_login_url: str = Field(default="", description="Sign-in page for the admin pages")
    oidc_logout_url: str = Field(
        default="", description="Where the admin pages' Sign out button posts (the issuer ends "
                                "the session there); none: no button")
    migration_database_url: str = Field(
        default="", description="Owner role's URL for migrations (default: database_url)")
    maintenance_database_url: str = Field(
        default="", description="A role that bypasses row-level security, for `rebuild` "
                                "only (it replays every organization's events)")
    database_app_role: str = Field(
        default="", description="Role the services connect as; migrations grant it access")
    http_host: str = Field(default="127.0.0.1", description="Where the API listens "
                           "(0.0.0.0 in a container)")
    http_port: int = Field(default=8000, ge=1, le=65535, description="The API's port")
    http_reuse_port: bool = Field(
        default=False, description="Share the port with the service's other API processes "
                                   "(SO_REUSEPORT: the kernel spreads connections over them)")
    consumer_max_attempts: int = Field(default=5, ge=1, description="Deliveries of a "
                                       "message before it becomes a dead letter")
    consumer_ack_wait_seconds: float = Field(default=60.0, gt=0, description="How long "
                                             "JetStream waits for an ack before redelivering")
    worker_max_concurrent_activities: int = Field(
        default=10, ge=1, le=1000, description="Activities one Temporal worker process runs at "
        "once; the rest wait in the task queue, where their start-to-close time does not run "
        "(about the database pool's size, so none times out waiting for a connection)")
    relay_batch_size: int = Field(default=500, ge=1, description="Outbox rows the relay "
                                  "publishes per round")
    admin_links: str = Field(default="",
                             description="name=url pairs, comma-separated, for the admin nav bar")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

    def require_oidc(self) -> None:
        """The HTTP API cannot run without a token issuer: say so at start-up."""
        missing = [name for name, value in (("KINETIC_OIDC_ISSUER", self.oidc_issuer),
                                            ("KINETIC_OIDC_JWKS_URL", self.oidc_jwks_url))
                   if not value]
        if missing:
            raise SystemExit(f"kinetic: the API needs {' and '.join(missing)} "
                             "(the OIDC issuer that signs staff tokens)")

    def admin_nav(self) -> list[tuple[str, str]]:
        pairs = [p.split("=", 1) for p in self.admin_links.split(",") if "=" in p]
        return [(name.strip(), url.strip()) for name, url in pairs]


def nats_servers(url: str) -> list[str]:
    """The server URLs of ``KINETIC_NATS_URL``: one, or a cluster's, comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


def settings_or_exit(cls: type[S], what: str = "") -> S:
    """The settings from the environment, or the process ends naming what is wrong."""
    try:
        return cls()
    except Exception as exc:  # pydantic's message names the variable
        label = f"{what} " if what else ""
        raise SystemExit(f"kinetic: invalid {label}configuration: {exc}") from None


def load_settings() -> Settings:
    return settings_or_exit(Settings)
