"""Email over SMTP (aiosmtplib); text from the templates in the alert's language."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from .base import DeliveryFailed
from .rendering import language_of, render


class EmailChannel:
    def __init__(self, name: str, host: str, port: int, sender: str, to: list[str], *, language: str = "en",
                 username: str | None = None, password: str | None = None, starttls: bool = False, timeout: float = 10.0):
        self.name = name
        self._host, self._port, self._sender, self._to = host, port, sender, to
        self._language, self._username, self._password = language, username, password
        self._starttls, self._timeout = starttls, timeout

    def target(self) -> str:
        return f"smtp://{self._host}:{self._port} to {', '.join(self._to)}"

    async def send(self, alerts: list[dict]) -> None:
        language = language_of(alerts, self._language)
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(self._to)
        message["Subject"] = render("subject", alerts, language)
        message.set_content(render("text", alerts, language))
        try:
            await aiosmtplib.send(
                message, hostname=self._host, port=self._port, username=self._username, password=self._password,
                start_tls=self._starttls, timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
