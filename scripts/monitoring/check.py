"""`check`: promtool and amtool over freshly generated files of both profiles."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.common.profiles import PROFILES

from .dashboards import stale_dashboards
from .files import REPO, committed_files, stale_files


@dataclass(frozen=True, slots=True)
class Outcome:
    what: str
    ok: bool
    output: str


def _run(what: str, command: list[str], cwd: Path) -> Outcome:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    return Outcome(what, done.returncode == 0, (done.stdout + done.stderr).strip())


CONSUL_SD_MISSING = "field consul_sd_configs not found"


def without_consul_sd(text: str) -> str:
    """The config with every consul_sd_configs swapped for a static target (for promtool builds
    without Consul discovery, e.g. Debian's): everything else is still checked."""
    document = yaml.safe_load(text)

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                ("static_configs" if k == "consul_sd_configs" else k): (
                    [{"targets": ["127.0.0.1:9"]}] if k == "consul_sd_configs" else swap(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [swap(item) for item in node]
        return node

    return yaml.safe_dump(swap(document), sort_keys=False)


def check_config(what: str, promtool: str, config: Path) -> Outcome:
    outcome = _run(what, [promtool, "check", "config", config.name], config.parent)
    if outcome.ok or CONSUL_SD_MISSING not in outcome.output:
        return outcome
    fallback = config.with_name(f"{config.stem}.static-check.yml")
    fallback.write_text(without_consul_sd(config.read_text(encoding="utf-8")), encoding="utf-8")
    second = _run(what, [promtool, "check", "config", fallback.name], config.parent)
    note = "this promtool has no Consul discovery; checked with consul_sd_configs replaced by static targets"
    return Outcome(f"{what} ({note})", second.ok, second.output)


def find_tool(name: str) -> str | None:
    return shutil.which(name)


def run_checks(report: Callable[[Outcome], None] = lambda _: None) -> list[Outcome]:
    """Generate into a temporary copy of the repo layout and run every tool; return the outcomes."""
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        report(outcome)

    promtool, amtool = find_tool("promtool"), find_tool("amtool")
    for name, tool in (("promtool", promtool), ("amtool", amtool)):
        if tool is None:
            record(Outcome(f"{name} on PATH", False, f"{name} is not installed (run `make setup`)"))
    stale = stale_files() + stale_dashboards()
    record(
        Outcome(
            "committed generated files are current",
            not stale,
            ""
            if not stale
            else "stale (run `python -m scripts.monitoring render`):\n"
            + "\n".join(str(p.relative_to(REPO)) for p in stale),
        )
    )
    with tempfile.TemporaryDirectory(prefix="fd-monitoring-") as tmp:
        root = Path(tmp)
        for path, text in committed_files(root).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        shutil.copytree(REPO / "alertmanager" / "templates", root / "alertmanager" / "templates")
        for name in sorted(PROFILES):
            prom = root / "prometheus" / "generated" / name
            if promtool:
                for config in ("prometheus.yml", "prometheus-consul.yml"):
                    record(check_config(f"[{name}] promtool check config {config}", promtool, prom / config))
                rules = sorted(str(p.relative_to(prom)) for p in (prom / "rules").glob("*.yml"))
                record(_run(f"[{name}] promtool check rules", [promtool, "check", "rules", *rules], prom))
                tests = sorted(p.name for p in (prom / "tests").glob("*.test.yml"))
                record(
                    _run(
                        f"[{name}] promtool test rules ({len(tests)} files)",
                        [promtool, "test", "rules", *tests],
                        prom / "tests",
                    )
                )
            if amtool:
                am = root / "alertmanager" / "generated" / name
                record(_run(f"[{name}] amtool check-config", [amtool, "check-config", "alertmanager.yml"], am))
    return outcomes
