"""deploy/monitoring/: the ServiceMonitor, the alerts and the Grafana dashboard, checked offline.

- Every rule group and every dashboard query goes through `promtool check rules` (Prometheus's own
  parser) when promtool is installed (`apt-get install prometheus` ships it); the structure of
  each file is checked against hand-written schema subsets of the Prometheus Operator CRDs always.
- Every metric a rule or a panel names is one a real `hookyard serve` exports: names are read
  from a live scrape, not from a list that could drift with the code.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.conftest import READ_KEY, gxm_body, gxm_headers, wait_for
from tests.deploy.test_manifests import _META, _STR, DEPLOY, _one

MONITORING = DEPLOY / "monitoring"
METRIC = re.compile(r"\bhookyard_[a-z0-9_]+\b")
REQUIRED_ALERTS = {
    "HookyardDeadDeliveriesRising",
    "HookyardOldestPendingDeliveryOld",
    "HookyardSpooling",
    "HookyardSpoolNotDraining",
    "HookyardSpoolQuarantined",
    "HookyardIngestFailing",
    "HookyardRejectionBurst",
}

_LABELS = {"type": "object", "additionalProperties": _STR}
_DURATION = {"type": "string", "pattern": r"^\d+[smh]$"}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes resource of a CRD: exactly these top-level keys, our metadata subset, `spec` as given."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _META, "spec": spec},
    }


def _closed(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _closed(
        ["selector", "endpoints"],
        selector=_closed(["matchLabels"], matchLabels=_LABELS),
        endpoints={
            "type": "array",
            "minItems": 1,
            "items": _closed(["port"], port=_STR, path=_STR, interval=_DURATION, scrapeTimeout=_DURATION),
        },
    ),
)
ALERT = _closed(
    ["alert", "expr", "labels", "annotations"],
    alert={"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
    expr=_STR,
    labels={
        "type": "object",
        "required": ["severity"],
        "properties": {"severity": {"enum": ["warning", "critical"]}},
        "additionalProperties": _STR,
    },
    annotations={"type": "object", "required": ["summary", "description"], "additionalProperties": _STR},
    **{"for": _DURATION},
)
PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _closed(
        ["groups"],
        groups={
            "type": "array",
            "minItems": 1,
            "items": _closed(["name", "rules"], name=_STR, rules={"type": "array", "minItems": 1, "items": ALERT}),
        },
    ),
)


def _yaml(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((MONITORING / name).read_text(encoding="utf-8")))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml("prometheusrule.yaml")["spec"]["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8")))


def _panel_queries() -> list[str]:
    return [target["expr"] for panel in _dashboard()["panels"] for target in panel["targets"]]


def _as_promql(grafana_expr: str) -> str:
    """Grafana's `$__rate_interval` is filled in by Grafana; Prometheus sees a duration there."""
    return grafana_expr.replace("$__rate_interval", "5m")


def test_service_monitor_scrapes_the_api_services_metrics_port():
    monitor = _yaml("servicemonitor.yaml")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    service = _one("Service", "hookyard-api")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_prometheus_rule_has_the_alerts_operators_need_and_validates():
    rule = _yaml("prometheusrule.yaml")
    jsonschema.validate(rule, PROMETHEUS_RULE)
    names = [r["alert"] for r in _rules()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    broken = json.loads(json.dumps(rule))
    broken["spec"]["groups"][0]["rules"][0]["labels"]["severity"] = "page-everyone"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, PROMETHEUS_RULE)


def test_dashboard_is_a_grafana_dashboard_on_a_datasource_variable():
    dashboard = _dashboard()
    assert dashboard["uid"] == "hookyard"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_promtool_accepts_every_rule_and_every_panel_query(tmp_path: Path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); the schema checks still ran")
    panels = [{"record": f"hookyard:panel_{n}", "expr": _as_promql(q)} for n, q in enumerate(_panel_queries())]
    groups = {"groups": [*_yaml("prometheusrule.yaml")["spec"]["groups"], {"name": "dashboard", "rules": panels}]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(groups), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules()) + len(panels)} rules found" in result.stdout


def _exported_names(exposition: str) -> set[str]:
    """Every sample name the exposition can carry, from its `# TYPE` lines (a family with no sample yet counts)."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum")}
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        if kind == "counter":  # the text format names a counter's family with its _total already
            names.add(family if family.endswith("_total") else family + "_total")
        else:
            names |= {family + suffix for suffix in suffixes.get(kind, ("",))}
    return names


@pytest.mark.process
def test_every_metric_a_rule_or_panel_names_is_exported(make_config, server_for):
    config = make_config()
    base = server_for(config)
    refused = httpx.post(f"{base}/webhooks/gxm", content=gxm_body(), headers=gxm_headers(signature="0" * 64))
    assert refused.status_code == 401  # ingest rejections are labelled by code: one makes the family appear

    def scrape() -> str:
        text = httpx.get(f"{base}/metrics", headers={"X-API-Key": READ_KEY}, timeout=5).text
        return text if "hookyard_queue_events" in text and "hookyard_deliveries_dead" in text else ""

    exported = _exported_names(wait_for(scrape, 20, 0.5, "the first metrics refresh"))
    named = {name for text in [r["expr"] for r in _rules()] + _panel_queries() for name in METRIC.findall(text)}
    assert named, "no metric names found"
    assert named <= exported, f"named but not exported: {sorted(named - exported)}"
