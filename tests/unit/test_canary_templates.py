"""Analysis templates: the shipped ones load, and a bad file is refused with a message naming the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.canary.contract import Decision
from scripts.canary.templates import (
    TEMPLATES_DIR,
    Comparison,
    Kind,
    TemplateError,
    load_template_file,
    load_templates,
    parse_template,
)
from services.common.metrics import LATENCY_BUCKETS

GOOD: dict[str, Any] = {
    "name": "error-ratio",
    "description": "server errors",
    "kind": "threshold",
    "query": 'sum(rate(x_total{service="$service",version="$version"}[$window]))',
    "unit": "ratio",
    "comparison": "<=",
    "threshold": {"absolute": 0.05},
    "interval_s": 5,
    "failure_limit": 1,
}


def with_(**changes: Any) -> dict[str, Any]:
    doc = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


def test_the_shipped_templates_cover_errors_latency_memory_cpu_and_zscores():
    checks = {c.name: c for c in load_templates()}
    assert {"error-ratio", "latency-p95", "memory-rss", "cpu", "error-ratio-zscore", "latency-p95-zscore"} <= set(
        checks
    )
    assert {c.kind for c in checks.values()} == {Kind.THRESHOLD, Kind.ZSCORE}
    for check in checks.values():
        query = check.render("response", "v2", 30)
        assert 'version="v2"' in query
        assert 'service="response"' in query
        assert "$" not in query
        assert check.comparison is Comparison.AT_MOST


def test_a_relative_threshold_follows_stable():
    p95 = next(c for c in load_templates() if c.name == "latency-p95")
    assert p95.threshold.limit(p95.comparison, 0.1) == pytest.approx(0.1 * 1.5 + 0.05)
    assert p95.threshold.limit(p95.comparison, None) is None  # no stable value: nothing to be relative to
    assert LATENCY_BUCKETS[0] < 0.05  # the margin is above the smallest bucket, so jitter within it passes


def test_a_valid_document_parses_with_every_field():
    check = parse_template(GOOD, "inline")
    assert check.name == "error-ratio"
    assert check.kind is Kind.THRESHOLD
    assert check.threshold.absolute == 0.05
    assert check.threshold.relative is None
    assert check.interval_s == 5
    assert check.failure_limit == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (with_(colour="red"), "unknown field(s) colour"),
        (with_(name="Error Ratio"), "lower-case letters"),
        (with_(query=None), "query is required"),
        (with_(query='rate(x{version="$version",pod="$pod"}[5m])'), "unknown placeholder(s) $pod"),
        (with_(query='rate(x{service="$service"}[5m])'), "must select by $version"),
        (with_(query='rate(x{version="$version"}[5m]) $'), "lone '$'"),
        (with_(kind="ratio"), "kind must be one of threshold, zscore"),
        (with_(comparison="<"), "comparison must be one of <=, >="),
        (with_(threshold={"absolute": 0.05, "relative": 2}), "exactly one of absolute or relative"),
        (with_(threshold={}), "exactly one of absolute or relative"),
        (with_(threshold={"absolute": 0.05, "margin": 0.01}), "margin goes with relative"),
        (with_(threshold={"absolute": "5%"}), "absolute must be a finite number"),
        (with_(threshold={"relative": -1}), "relative must be at least 0"),
        (with_(threshold={"max_z": 3}), "unknown key(s) max_z for kind threshold"),
        (with_(kind="zscore", threshold={"min_stdev": 0.1}), "max_z (above 0) is required"),
        (with_(kind="zscore", threshold={"max_z": 3, "min_points": 1}), "min_points must be at least 2"),
        (with_(threshold=0.05), "threshold is required and must be a mapping"),
        (with_(interval_s=0), "interval_s must be at least 1"),
        (with_(interval_s=2.5), "interval_s must be a whole number"),
        (with_(failure_limit=-1), "failure_limit must be at least 0"),
        (with_(failure_limit=True), "failure_limit must be a whole number"),
        (["not", "a", "mapping"], "a template is a mapping"),
    ],
)
def test_a_bad_template_is_refused_with_a_clear_message(doc, message):
    with pytest.raises(TemplateError) as caught:
        parse_template(doc, "team/check.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("team/check.yaml")


def test_a_team_adds_a_check_by_adding_a_file(tmp_path: Path):
    for source in TEMPLATES_DIR.glob("*.yaml"):
        (tmp_path / source.name).write_text(source.read_text())
    extra = with_(name="hello-timeouts", threshold={"relative": 2, "margin": 0.01})
    (tmp_path / "hello-timeouts.yaml").write_text(yaml.safe_dump(extra))
    names = [c.name for c in load_templates(tmp_path)]
    assert "hello-timeouts" in names
    assert len(names) == len(load_templates()) + 1


def test_unreadable_duplicate_or_missing_templates_are_refused(tmp_path: Path):
    with pytest.raises(TemplateError, match="no such folder"):
        load_templates(tmp_path / "missing")
    with pytest.raises(TemplateError, match=r"holds no \*.yaml"):
        load_templates(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template_file(broken)
    broken.unlink()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(GOOD))
    with pytest.raises(TemplateError, match="already used by"):
        load_templates(tmp_path)


def test_values_that_cannot_go_into_a_label_matcher_are_refused():
    check = parse_template(GOOD, "inline")
    with pytest.raises(ValueError, match="cannot go into a label matcher"):
        check.render("response", 'v2"} or up{x="', 30)


def test_the_evaluate_command_validates_a_folder_and_holds_without_prometheus(tmp_path: Path, capsys):
    from scripts.canary import evaluate
    from scripts.ports import free_port

    assert evaluate.main(["--check-templates"]) == 0
    assert "latency-p95-zscore" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(with_(kind="ratio")))
    assert evaluate.main(["--check-templates", "--templates", str(tmp_path)]) == evaluate.BAD_TEMPLATE
    assert "kind must be one of" in capsys.readouterr().err
    nowhere = f"http://127.0.0.1:{free_port()}"
    args = ["--prometheus", nowhere, "--service", "response", "--stable", "v1", "--canary", "v2"]
    assert evaluate.main(args) == evaluate.EXIT[Decision.HOLD]
    assert "HOLD — no data yet" in capsys.readouterr().out
