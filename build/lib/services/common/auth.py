"""Bearer API keys for write endpoints (production mode); no keys configured = development mode."""

from __future__ import annotations

import hmac

from pydantic import SecretStr


def key_bytes(keys: list[SecretStr]) -> list[bytes]:
    return [key.get_secret_value().encode() for key in keys]


def bearer_ok(header: str, keys: list[bytes]) -> bool:
    """True if no keys are configured, or the `Authorization: Bearer <key>` header holds one."""
    if not keys:
        return True
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    presented = token.strip().encode()
    # compare against every key so timing does not reveal which one matched
    return any([hmac.compare_digest(presented, key) for key in keys])
