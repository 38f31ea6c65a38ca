"""Schemathesis against the OpenAPI documents of ingest, notify and rules on the real stack, in
production mode with keys: whatever it sends (valid, invalid, at the bounds), no server error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from factories import now, over_budget

KEYS = {"DEALERWATCH_INGEST_KEYS": "ingest-key", "DEALERWATCH_API_KEYS": "ops-key", "DEALERWATCH_ADMIN_KEYS": "admin-key"}
EXAMPLES = 25


def schemathesis(service, key: str, *exclude: str) -> str:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        f"{service.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "-n",
        str(EXAMPLES),
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "-H",
        f"Authorization: Bearer {key}",
        "--no-color",
    ]
    for path in exclude:
        command += ["--exclude-path", path]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    summary = result.stdout[-3000:]
    print(summary)
    assert result.returncode == 0, summary
    return summary


@pytest.mark.slow
@pytest.mark.timeout(300)  # three schemathesis runs: 42-65 s alone, over 120 s beside other stacks
def test_no_server_error_whatever_is_sent(services):
    ingest, rules = services("ingest", "rules", env=KEYS)
    (notify,) = services("notify", env={**KEYS, "DEALERWATCH_RULES_URL": rules.url})
    at = now()
    assert (
        httpx.post(
            f"{ingest.url}/v1/events", json=over_budget("D-1", at), headers={"Authorization": "Bearer ingest-key"}
        ).status_code
        == 202
    )
    summaries = [
        schemathesis(ingest, "ingest-key"),
        schemathesis(notify, "ops-key", "/v1/alerts/stream"),  # a stream never ends: its own tests
        schemathesis(rules, "admin-key"),
    ]
    cases = [int(m) for s in summaries for m in re.findall(r"(\d+) generated", s)]
    print("test cases generated:", cases)
