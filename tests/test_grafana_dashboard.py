"""docs/grafana-dashboard.json: valid JSON Grafana imports, a panel for every series, and no
query of a series the site does not export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from analysis import metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"
NAME = re.compile(r"\b(gemma_[a-z0-9_]+)")
# What Prometheus adds to a family's name in its samples.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def _sample_names() -> dict[str, str]:
    return {
        series.name + suffix: series.name
        for series in metrics.ALL
        for suffix in SUFFIXES[series.kind]
    }


def test_it_is_a_dashboard_with_panels_on_a_prometheus_data_source():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["type"] == "prometheus", panel["title"]


def test_every_query_names_a_sample_the_site_exports():
    known = _sample_names()
    for expr in _queries():
        names = NAME.findall(expr)
        assert names, expr
        unknown = [n for n in names if n not in known]
        assert not unknown, f"{expr}: {unknown} not in analysis/metrics.py"


def test_every_series_has_a_panel():
    known = _sample_names()
    shown = {known[n] for expr in _queries() for n in NAME.findall(expr) if n in known}
    assert shown == {series.name for series in metrics.ALL}
