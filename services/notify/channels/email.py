"""Email over SMTP (aiosmtplib); text from the templates in the alert's language."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field

from .base import Context, DeliveryFailed
from .rendering import language_of, render


class EmailConfig(BaseModel):
    """`email:` in the routes file."""

    model_config = ConfigDict(extra="forbid")
    host: str
    port: int = 25
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool | None = Field(
        default=None,
        description="Upgrade to TLS with STARTTLS: unset = by the port (587: required, 465: TLS from the start, "
        "other ports: whenever the server offers it).",
    )
    language: Literal["zh", "en"] = "en"


def build(name: str, config: EmailConfig, context: Context) -> EmailChannel:
    return EmailChannel(
        name,
        config.host,
        config.port,
        config.sender,
        config.to,
        language=config.language,
        username=context.env(config.username_env) if config.username_env else None,
        password=context.env(config.password_env) if config.password_env else None,
        starttls=config.starttls,
        timeout=context.timeout,
    )


class EmailChannel:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        to: list[str],
        *,
        language: str = "en",
        username: str | None = None,
        password: str | None = None,
        starttls: bool | None = None,
        timeout: float = 10.0,
    ):
        self.name = name
        self._host, self._port, self._sender, self._to = host, port, sender, to
        self._language, self._username, self._password = language, username, password
        # unset: by the port (587 requires STARTTLS, 465 is TLS from the start, others upgrade if offered)
        self._implicit_tls = starttls is None and port == 465
        if starttls is None:
            starttls = True if port == 587 else None  # None: whenever the server offers it
        self._starttls = None if self._implicit_tls else starttls
        self._timeout = timeout

    def target(self) -> str:
        return f"smtp://{self._host}:{self._port} to {', '.join(self._to)}"

    async def send(self, alerts: list[dict[str, Any]]) -> None:
        language = language_of(alerts, self._language)
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(self._to)
        message["Subject"] = render("subject", alerts, language)
        message.set_content(render("text", alerts, language))
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                use_tls=self._implicit_tls,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
