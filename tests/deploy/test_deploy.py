"""What operators deploy from: the compose file, the documented configuration, the AsyncAPI document."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {f"DEALERWATCH_{name.upper()}" for name in Settings.model_fields}
SERVICES = ("ingest", "rules", "notify")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_setting_is_set_for_every_service(compose):
    for name in SERVICES + tuple(f"{name}-ha" for name in SERVICES):
        service = compose["services"][name]
        assert set(service["environment"]) >= VARIABLES, f"{name} lacks {VARIABLES - set(service['environment'])}"
        assert service["command"] == ["serve", name.removesuffix("-ha")]


def test_cluster_profile_spreads_every_part_over_three_nodes(compose):
    services = compose["services"]
    cluster = {name for name, service in services.items() if service.get("profiles") == ["cluster"]}
    assert {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "mongo-1", "mongo-2", "mongo-3"} <= cluster
    assert services["rules-ha"]["deploy"]["replicas"] >= 2 and services["notify-ha"]["deploy"]["replicas"] == 2
    environment = services["rules-ha"]["environment"]
    assert environment["DEALERWATCH_AMQP_URL"].count("amqp://") == 3  # every node, for failover
    assert "replicaSet=rs0" in environment["DEALERWATCH_MONGO_URL"]
    assert environment["DEALERWATCH_MONGO_WRITE_CONCERN"] == "majority"


def test_production_shape(compose):
    services = compose["services"]
    assert services["mongo"]["image"].startswith("mongo:")  # real MongoDB in production
    assert "management" in services["rabbitmq"]["image"]
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
    for name in SERVICES:
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert services[f"{name}-ha"]["depends_on"]["rabbitmq-2"]["condition"] == "service_healthy"
        assert services[name]["environment"]["DEALERWATCH_INGEST_KEYS"].startswith("${DEALERWATCH_INGEST_KEYS:?")
    assert "guest" not in (ROOT / "docker-compose.yml").read_text()


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_compose_validates_and_requires_its_secrets():
    env = {
        **os.environ,
        "RABBITMQ_PASSWORD": "p",
        "DEALERWATCH_INGEST_KEYS": "k",
        "DEALERWATCH_ADMIN_KEYS": "a",
        "DEALERWATCH_API_KEYS": "b",
        "RABBITMQ_ERLANG_COOKIE": "c",
        "DEALERWATCH_METRICS_KEYS": "m",
        "GRAFANA_ADMIN_PASSWORD": "g",
    }
    subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env, check=True)
    subprocess.run(["docker-compose", "--profile", "cluster", "config", "-q"], cwd=ROOT, env=env, check=True)
    env.pop("DEALERWATCH_INGEST_KEYS")
    refused = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "DEALERWATCH_INGEST_KEYS" in refused.stderr
    env.update(DEALERWATCH_INGEST_KEYS="k", GRAFANA_ADMIN_PASSWORD="")
    refused = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in refused.stderr


def test_compose_provisions_prometheus_with_the_rules_and_grafana_with_the_dashboard(compose):
    services = compose["services"]
    mounted = {volume.split(":")[0] for name in ("prometheus", "grafana") for volume in services[name]["volumes"]}
    assert {"./deploy/prometheus/rules.yml", "./deploy/prometheus/prometheus.yml", "./deploy/grafana/dashboards"} <= mounted
    for path in mounted - {"prometheus-data", "grafana-data"}:
        assert (ROOT / path).exists(), path
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/dealerwatch.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    scraped = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert scraped["scrape_configs"][0]["static_configs"][0]["targets"] == ["ingest:8080", "rules:8082", "notify:8081"]


def test_readme_documents_every_variable_and_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(DEALERWATCH_[A-Z_]+)` \|", readme, re.MULTILINE))
    assert documented == VARIABLES
    commands = re.findall(r"^make (\w+)", readme, re.MULTILINE)
    assert commands[:2] == ["run", "test"]


def test_asyncapi_document_names_the_queues_and_the_event_models(capsys):
    from services.cli import main

    assert main(["asyncapi"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["asyncapi"].startswith("3.")
    schemas = set(document["components"]["schemas"])
    assert {"Sale", "Visit", "PromotionPlanned", "PromotionSpend", "TargetSet", "AlertSignal"} <= schemas
    text = json.dumps(document)
    assert "dealerwatch.rules.p0" in text and "dealerwatch.notify.alert-signals" in text


def test_policy_schema_command_prints_a_json_schema(capsys):
    from services.cli import main

    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["rules"]["type"] == "array"
    assert "RuleSpec" in schema["$defs"]
