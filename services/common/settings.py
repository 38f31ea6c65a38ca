"""Configuration, read from environment variables prefixed `DEALERWATCH_`.

Every variable is listed in the README's configuration table and set in
docker-compose.yml; a test checks both against this class.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALERWATCH_", extra="ignore")

    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="RabbitMQ URL."
    )
    mongo_url: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017/?directConnection=true&retryWrites=false"),
        description="MongoDB URL.",
    )
    mongo_db: str = Field(default="dealerwatch", description="MongoDB database name.")
    namespace: str = Field(
        default="dealerwatch",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        description="Prefix of every exchange and queue name (several stacks can share a broker).",
    )
    prefetch: int = Field(default=500, ge=1, le=5000, description="Unacked messages per consumer.")
    max_attempts: int = Field(
        default=5, ge=1, le=50, description="Handler attempts before a message is dead-lettered."
    )

    ingest_host: str = Field(default="127.0.0.1", description="Ingest HTTP bind address.")
    ingest_port: int = Field(default=8080, description="Ingest HTTP port.")
    ingest_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for POST /v1/events; unset = open development mode.",
    )
    ingest_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Body size limit.")
    ingest_max_batch: int = Field(default=1000, ge=1, description="Events per request.")
    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for broker confirms before answering 503."
    )

    rules_host: str = Field(default="127.0.0.1", description="Rules service HTTP bind address.")
    rules_port: int = Field(default=8082, description="Rules service HTTP port (health).")
    policy_file: str = Field(default="policies/default.yaml", description="Policy file path.")
    policy_poll_seconds: float = Field(default=1.0, gt=0, description="How often the policy and routes files are checked for changes.")
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for the admin endpoints (policy reload); unset = open development mode.",
    )
    clock_max_sleep_seconds: float = Field(
        default=30.0, gt=0, description="Longest the live clock sleeps between checks."
    )
    clock_grace_seconds: float = Field(
        default=300.0, ge=0,
        description="The live clock judges dealers at wall time minus this: events up to this late are judged as they "
        "happened; an older one is history and holds its dealer (see the next).",
    )
    clock_hold_seconds: float = Field(
        default=3600.0, gt=0,
        description="A dealer receiving history is judged at its own events only, not by the clock, until none "
        "arrived for it for this long (a backfill may pause this long, or restart, without a false alarm).",
    )

    notify_host: str = Field(default="127.0.0.1", description="Notify HTTP bind address.")
    notify_port: int = Field(default=8081, description="Notify HTTP port.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for notify's write endpoints (ack, resolve); unset = open development mode.",
    )
    rules_url: str = Field(
        default="http://127.0.0.1:8082", description="Where notify asks the rules service for a dealer's measures."
    )
    timezone: str = Field(
        default="UTC", description="Calendar time zone of the board's weekly sales chart (use the policy's)."
    )
    routes_file: str | None = Field(
        default=None, description="Routes file (receivers and the routing tree); unset = every webhook gets every alert."
    )
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated webhook URLs that receive new alerts."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret: each webhook body is signed, header X-Dealerwatch-Signature: sha256=<HMAC-SHA256 hex>.",
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="Per webhook request.")
    webhook_retry_initial_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles on each failure."
    )
    webhook_retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    webhook_max_attempts: int = Field(
        default=50, ge=1, description="Attempts before a delivery is marked failed."
    )

    log_level: str = Field(default="INFO", description="Logging level.")

    _split_keys = field_validator("ingest_keys", "admin_keys", "api_keys", "webhook_urls", mode="before")(_split_csv)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. UTC or Asia/Shanghai") from None
        return value

    @property
    def auth_enabled(self) -> bool:
        return bool(self.ingest_keys)
