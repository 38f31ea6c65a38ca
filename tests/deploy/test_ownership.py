"""One owner for each concept, read from the code (docs/architecture.md): the counts the
project keeps at one, and the boundaries between the services."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"


def sources(package: str) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in sorted((SERVICES / package).rglob("*.py"))}


def files_matching(package: str, pattern: str) -> set[str]:
    return {path for path, text in sources(package).items() if re.search(pattern, text)}


def test_only_the_alert_module_builds_writes_to_alerts():
    """Update operators in notify: alert.py for the `alerts` collection; the others each write
    their own collection (silences, the change log's counters, the dealer timeline, leases)."""
    writers = files_matching("notify", r'"\$(set|unset|push|addToSet|min|max|inc|setOnInsert)"')
    assert writers == {
        "services/notify/alert.py",
        "services/notify/silences.py",  # silences
        "services/notify/changes.py",  # counters, alert_changes
        "services/notify/dealers/file.py",  # dealer_timeline
        "services/notify/leader.py",  # leases
        "services/notify/dealers/network.py",  # reads dealer_timeline ($max in an aggregation)
        "services/notify/support/priorities.py",  # support_priorities
    }
    for path in writers - {"services/notify/alert.py"}:
        assert "alerts" not in re.findall(r'db\["(\w+)"\]', (ROOT / path).read_text()), path


def test_labels_are_matched_in_one_place():
    assert files_matching("notify", r'f"labels\.|"labels\.') == {"services/notify/matchers.py"}
    assert files_matching("notify", r"class Matchers\b|def labels_of|def matches_labels") == {"services/notify/matchers.py"}


def test_state_key_formats_are_built_and_parsed_in_one_place():
    assert files_matching("rules", r'\}\|\{|split\("\|"|partition\("\|"\)') == {"services/rules/keys.py"}


def test_the_dealer_file_restates_no_policy_value():
    notify = "\n".join(sources("notify").values())
    board = "\n".join(p.read_text() for p in (SERVICES / "notify" / "board" / "static").glob("*.js"))
    for restated in ("sales_baseline_weekly", "DEALERWATCH_TIMEZONE", "Asia/Shanghai"):
        assert restated not in notify + board, restated
    assert not re.search(r"baseline_weeks\s*=\s*\d|drop_?[bB]elow\s*=\s*0\.\d", notify + board)


def test_a_service_imports_only_itself_and_the_common_contract():
    for service in ("ingest", "rules", "notify"):
        for path, text in sources(service).items():
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    module = node.module
                elif isinstance(node, ast.Import):
                    module = node.names[0].name
                else:
                    continue
                if module.startswith("services."):
                    assert module.split(".")[1] in (service, "common"), f"{path} imports {module}"
