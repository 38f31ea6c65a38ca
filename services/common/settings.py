"""Configuration, read from environment variables prefixed `DEALERWATCH_`.

Every variable is listed in the README's configuration table and set in
docker-compose.yml; a test checks both against this class.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .durations import DAY
from .events import EARLIEST
from .partitions import DEFAULT_PARTITIONS, MAX_PARTITIONS
from .topology import DELIVERY_LIMIT


def _split_csv(value: object) -> object:
    """ "a,b" -> ["a", "b"]; unset or "" -> []. A blank item (" ", ",", "a,,b") is an error: a key
    list that parses to nothing would start a production stack open."""
    if isinstance(value, str):
        if not value:
            return []
        items = [item.strip() for item in value.split(",")]
        if not all(items):
            raise ValueError("a comma-separated list with an empty item (give each value, or leave it unset)")
        return items
    return value


class Settings(BaseSettings):
    # renamed variables are still read under their old names (DEALERWATCH_WEBHOOK_TIMEOUT_SECONDS, ...)
    model_config = SettingsConfigDict(env_prefix="DEALERWATCH_", extra="ignore", populate_by_name=True)

    def amqp_urls(self) -> list[str]:
        return [url.strip() for url in self.amqp_url.get_secret_value().split(",") if url.strip()]

    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL, or the URLs of a cluster's nodes separated by commas: a service connects to the "
        "first that answers and moves to another when its node goes away.",
    )
    mongo_url: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017/?directConnection=true&retryWrites=false"),
        description="MongoDB URL.",
    )
    mongo_db: str = Field(default="dealerwatch", description="MongoDB database name.")
    mongo_write_concern: str = Field(
        default="majority",
        pattern=r"^(majority|[1-9])$",
        description="Write concern of every write (with the journal): 'majority' (a replica set keeps what it "
        "acknowledged through a failover; a single server treats it as 1) or a number of members.",
    )
    namespace: str = Field(
        default="dealerwatch",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        description="Prefix of every exchange and queue name (several stacks can share a broker).",
    )
    partitions: int = Field(
        default=DEFAULT_PARTITIONS,
        ge=1,
        le=MAX_PARTITIONS,
        description="Partitions of the dealers over rules workers (one queue each); fixed for a deployment: every "
        "service must use the same number, and changing it needs a drained stack (docs/scaling.md).",
    )
    prefetch: int = Field(default=500, ge=1, le=5000, description="Unacked messages per consumer.")
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=DELIVERY_LIMIT - 1,
        description=f"Handler attempts before a message is dead-lettered (below the queues' delivery limit, {DELIVERY_LIMIT}, "
        "so that the reason is always recorded).",
    )

    ingest_host: str = Field(default="127.0.0.1", description="Ingest HTTP bind address.")
    ingest_port: int = Field(default=8080, description="Ingest HTTP port.")
    ingest_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for POST /v1/events; unset = open development mode.",
    )
    ingest_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Body size limit.")
    ingest_max_batch: int = Field(default=1000, ge=1, description="Events per request.")
    max_future_seconds: float = Field(
        default=DAY,
        ge=0,
        le=366 * DAY,
        description="How far ahead of ingest's clock an event's occurred_at may be (later ones are refused, 422).",
    )
    earliest_event: AwareDatetime = Field(
        default=EARLIEST,
        description=f"The earliest occurred_at accepted (earlier ones are refused, 422); not before {EARLIEST:%Y-%m-%d}.",
    )
    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for broker confirms before answering 503."
    )

    rules_host: str = Field(default="127.0.0.1", description="Rules service HTTP bind address.")
    rules_port: int = Field(default=8082, description="Rules service HTTP port (health).")
    policy_file: str = Field(default="policies/default.yaml", description="Policy file path.")
    files_poll_seconds: float = Field(
        validation_alias=AliasChoices("DEALERWATCH_FILES_POLL_SECONDS", "DEALERWATCH_POLICY_POLL_SECONDS"),
        default=1.0,
        gt=0,
        description="How often the policy and routes files are checked for changes.",
    )
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for the admin endpoints (policy reload); unset = open development mode.",
    )
    clock_max_sleep_seconds: float = Field(default=30.0, gt=0, description="Longest the live clock sleeps between checks.")
    clock_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="The live clock judges dealers at wall time minus this: events up to this late are judged as they "
        "happened; an older one is history and holds its dealer (see the next).",
    )
    clock_hold_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A dealer receiving history is judged at its own events only, not by the clock, until none "
        "arrived for it for this long (a backfill may pause this long, or restart, without a false alarm).",
    )

    notify_host: str = Field(default="127.0.0.1", description="Notify HTTP bind address.")
    notify_port: int = Field(default=8081, description="Notify HTTP port.")
    archive_days: int = Field(
        default=400,
        ge=1,
        le=36_600,
        description="How long the archive of accepted events (MongoDB `events`, the input of `policy diff --archive` "
        "and `events export`) keeps an event, counted from its occurred_at.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated operator keys: read and act (ack, resolve, silence) on notify, read on rules; "
        "with viewer_keys unset as well = open development mode (loopback only).",
    )
    viewer_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated viewer keys: read everything notify and rules show (alerts, the stream, dealer files), "
        "act on nothing.",
    )
    metrics_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys that may read GET /metrics only (the scraper's); viewer and operator keys may too.",
    )
    notify_max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Notify request body limit (413 above it).")
    max_streams: int = Field(default=100, ge=1, description="Concurrent live streams (SSE) per notify; 503 beyond it.")
    rules_url: str = Field(
        default="http://127.0.0.1:8082", description="Where notify asks the rules service for a dealer's measures."
    )
    ingest_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Where notify posts the support the board sends (support.dispatched, with the first ingest key).",
    )
    routes_file: str | None = Field(
        default=None, description="Routes file (receivers and the routing tree); unset = every webhook gets every alert."
    )
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated webhook URLs that receive new alerts."
    )
    webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated shared secrets: each webhook request is signed with every one (X-Dealerwatch-Signature: "
        "t=<unix time>,v1=<HMAC-SHA256 hex of '<t>.' + body>, one v1 per secret: give two while rotating).",
    )
    delivery_timeout_seconds: float = Field(
        validation_alias=AliasChoices("DEALERWATCH_DELIVERY_TIMEOUT_SECONDS", "DEALERWATCH_WEBHOOK_TIMEOUT_SECONDS"),
        default=5.0,
        gt=0,
        description="Per notification request (every channel).",
    )
    delivery_retry_initial_seconds: float = Field(
        validation_alias=AliasChoices("DEALERWATCH_DELIVERY_RETRY_INITIAL_SECONDS", "DEALERWATCH_WEBHOOK_RETRY_INITIAL_SECONDS"),
        default=1.0,
        gt=0,
        description="First retry delay; doubles on each failure.",
    )
    delivery_retry_max_seconds: float = Field(
        validation_alias=AliasChoices("DEALERWATCH_DELIVERY_RETRY_MAX_SECONDS", "DEALERWATCH_WEBHOOK_RETRY_MAX_SECONDS"),
        default=300.0,
        gt=0,
        description="Longest retry delay.",
    )
    receivers_allow_private: bool = Field(
        default=False,
        description="Let receivers be on private, loopback or link-local addresses (a receiver's host is checked at "
        "every connection; by default only public addresses are reached, so a routes file cannot call internal services).",
    )
    silence_max_days: float = Field(
        default=30.0, gt=0, le=366, description="The longest a silence may last (longer ones are refused, 422)."
    )
    delivery_max_attempts: int = Field(
        validation_alias=AliasChoices("DEALERWATCH_DELIVERY_MAX_ATTEMPTS", "DEALERWATCH_WEBHOOK_MAX_ATTEMPTS"),
        default=50,
        ge=1,
        description="Attempts before a delivery is marked failed.",
    )

    log_level: str = Field(default="INFO", description="Logging level.")

    _split_keys = field_validator(
        "ingest_keys", "admin_keys", "api_keys", "viewer_keys", "metrics_keys", "webhook_urls", "webhook_secret", mode="before"
    )(_split_csv)

    @field_validator("earliest_event")
    @classmethod
    def _not_before_2000(cls, value: dt.datetime) -> dt.datetime:
        if value < EARLIEST:
            raise ValueError(f"the contract starts on {EARLIEST:%Y-%m-%d}")
        return value
