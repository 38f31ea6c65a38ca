"""Email over SMTP (aiosmtplib); text from the templates in the alert's language.

Credentials go only over TLS: with a username or password, TLS from the start on 465, else
STARTTLS is required (a server that does not offer it is refused, never logged in to in the
clear), and `starttls: false` is refused when the routes file is read."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import Context, DeliveryFailed, SecretName, connected_socket
from .rendering import language_of, render

IMPLICIT_TLS_PORT = 465


class EmailConfig(BaseModel):
    """`email:` in the routes file."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field(pattern=r"^[A-Za-z0-9.:-]+$", description="The SMTP server's host name or address.")
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username_env: SecretName | None = None
    password_env: SecretName | None = None
    starttls: bool | None = Field(
        default=None,
        description="Upgrade to TLS with STARTTLS: unset = by the port (587: required, 465: TLS from the start, "
        "other ports: whenever the server offers it; required with credentials).",
    )
    language: Literal["zh", "en"] = "en"

    @model_validator(mode="after")
    def _credentials_over_tls(self) -> EmailConfig:
        if (self.username_env or self.password_env) and self.starttls is False and self.port != IMPLICIT_TLS_PORT:
            raise ValueError(
                "credentials are sent only over TLS: leave starttls unset or true (or use port 465), not starttls: false"
            )
        return self


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
        allow_private=context.allow_private,
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
        allow_private: bool = False,
    ):
        self.name = name
        self._host, self._port, self._sender, self._to = host, port, sender, to
        self._language, self._username, self._password = language, username, password
        # unset: by the port (587 requires STARTTLS, 465 is TLS from the start, others upgrade if offered)
        self._implicit_tls = starttls is None and port == IMPLICIT_TLS_PORT
        if starttls is None:
            starttls = True if port == 587 or username or password else None  # None: whenever the server offers it
        self._starttls = None if self._implicit_tls else starttls
        self._timeout = timeout
        self._allow_private = allow_private

    def target(self) -> str:
        return f"smtp://{self._host}:{self._port} to {', '.join(self._to)}"

    async def send(self, alerts: list[dict[str, Any]]) -> None:
        language = language_of(alerts, self._language)
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(self._to)
        # one line whatever the event's text holds (a line separator in a dealer's name)
        message["Subject"] = " ".join(render("subject", alerts, language).split())
        message.set_content(render("text", alerts, language))
        sock = None
        try:
            sock = await connected_socket(self._host, self._port, self._timeout, self._allow_private)
            await aiosmtplib.send(
                message,
                hostname=self._host,  # for TLS: the certificate is checked against it
                sock=sock,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                use_tls=self._implicit_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"the mail server refused: {exc.code}", f"SMTP {exc.code}: {exc.message[:200]}") from None
        except aiosmtplib.SMTPTimeoutError as exc:
            raise DeliveryFailed("timed out", f"{type(exc).__name__}: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            reason = "the mail server offers no STARTTLS" if "STARTTLS" in str(exc) else f"SMTP failed ({type(exc).__name__})"
            raise DeliveryFailed(reason, f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise DeliveryFailed("could not connect", f"{type(exc).__name__}: {exc}") from None
        finally:
            if sock is not None:
                sock.close()
