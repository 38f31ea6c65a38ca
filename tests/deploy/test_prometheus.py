"""The alerting rules (deploy/prometheus/rules.yml) pass Debian's `promtool check rules` and the
`promtool test rules` file beside them (#25); a broken rule is refused."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT

RULES = ROOT / "deploy" / "prometheus"
pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian's prometheus is not installed (`make test`)")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=60)


def test_the_alerting_rules_are_valid_and_their_tests_pass():
    checked = promtool("check", "rules", "rules.yml")
    assert checked.returncode == 0 and "SUCCESS: 6 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_changed_threshold_fails_the_rules_tests(tmp_path):
    (tmp_path / "rules.yml").write_text((RULES / "rules.yml").read_text().replace("> 900", "> 5000"))
    (tmp_path / "rules.test.yml").write_text((RULES / "rules.test.yml").read_text())
    tested = subprocess.run(["promtool", "test", "rules", "rules.test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert tested.returncode != 0 and "DealerwatchClockStopped" in tested.stdout + tested.stderr
