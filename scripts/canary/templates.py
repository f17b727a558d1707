"""Analysis templates: each check of a canary analysis as data, one YAML file per check.

As Argo Rollouts' AnalysisTemplates do, a check names a PromQL query, how the canary's value is
compared (to a fixed limit, to a multiple of stable's value, or as a z-score against stable's
recent series), how often it is measured and how many failures it tolerates. A team adds a check
by adding a file to ``templates/`` (or to the folder given with ``--templates``); no code changes.

Query placeholders (``string.Template`` syntax, ``$name``): ``$service``, ``$version`` (the
``version`` label of the series: the canary's or stable's) and ``$window`` (the analysis window as
a PromQL duration, e.g. ``30s``). Any other ``$`` word is an error at load time.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from services.common.profiles import duration

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PLACEHOLDERS = frozenset({"service", "version", "window"})
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
KEYS = frozenset(
    {"name", "description", "kind", "query", "unit", "comparison", "threshold", "interval_s", "failure_limit"}
)


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file and the field."""


class Kind(Enum):
    THRESHOLD = "threshold"  # the canary's current value against a limit
    ZSCORE = "zscore"  # the canary's mean over the window against stable's mean and deviation


class Comparison(Enum):
    AT_MOST = "<="  # the canary passes while its value is at most the limit (errors, latency, memory)
    AT_LEAST = ">="  # the canary passes while its value is at least the limit (a success rate, throughput)


@dataclass(frozen=True, slots=True)
class Threshold:
    """Exactly one of: ``absolute``; ``relative`` (x stable, plus ``margin``); ``max_z`` (z-score)."""

    absolute: float | None = None
    relative: float | None = None
    margin: float = 0.0
    max_z: float | None = None
    min_stdev: float = 0.0  # z-score: stable's deviation is taken as at least this
    min_points: int = 3  # z-score: fewer points of either version is no data

    def limit(self, comparison: Comparison, stable: float | None) -> float | None:
        """The value the canary is held to; None when it is relative and stable has no value."""
        if self.absolute is not None:
            return self.absolute
        if self.relative is None or stable is None:
            return None
        if comparison is Comparison.AT_MOST:
            return stable * self.relative + self.margin
        return stable * self.relative - self.margin


@dataclass(frozen=True, slots=True)
class CheckTemplate:
    name: str
    description: str
    kind: Kind
    query: str
    unit: str
    comparison: Comparison
    threshold: Threshold
    interval_s: int
    failure_limit: int  # failures in a row tolerated; one more rolls back (Argo's failureLimit)
    source: str = ""  # the file it came from, for messages

    def render(self, service: str, version: str, window_s: int) -> str:
        """The PromQL for one version of one service over the window."""
        values = {"service": service, "version": version, "window": duration(window_s)}
        for key, value in values.items():
            if not re.fullmatch(r"[A-Za-z0-9_.:+-]+", value):
                raise ValueError(f"{key} {value!r} cannot go into a label matcher (letters, digits, _.:+- only)")
        return string.Template(self.query).substitute(values)

    @property
    def threshold_text(self) -> str:
        t = self.threshold
        if t.max_z is not None:
            return f"z {self.comparison.value} {'' if self.comparison is Comparison.AT_MOST else '-'}{t.max_z:g}"
        if t.absolute is not None:
            return f"{self.comparison.value} {format_value(t.absolute, self.unit)}"
        sign = "+" if self.comparison is Comparison.AT_MOST else "-"
        return f"{self.comparison.value} {t.relative:g} x stable {sign} {format_value(t.margin, self.unit)}"


def format_value(value: float | None, unit: str) -> str:
    """A number as a person reads it in the template's unit (ratio, seconds, bytes, or as is)."""
    if value is None:
        return "no data"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 10 else f"{value:.1f} s"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    return f"{value:.3g}"


def _number(doc: Mapping[str, Any], key: str, where: str, *, minimum: float | None = None) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TemplateError(f"{where}: {key} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise TemplateError(f"{where}: {key} must be at least {minimum:g}, got {value!r}")
    return float(value)


def _integer(doc: Mapping[str, Any], key: str, where: str, *, minimum: int, default: int | None = None) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"{where}: {key} must be a whole number, got {value!r}")
    if value < minimum:
        raise TemplateError(f"{where}: {key} must be at least {minimum}, got {value}")
    return value


def _text(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(f"{where}: {key} is required and must be text")
    return value.strip()


def _choice(doc: Mapping[str, Any], key: str, where: str, kind: type[Kind] | type[Comparison]) -> Any:
    value = doc.get(key)
    allowed = [member.value for member in kind]
    if value not in allowed:
        raise TemplateError(f"{where}: {key} must be one of {', '.join(allowed)}; got {value!r}")
    return kind(value)


def _query(doc: Mapping[str, Any], where: str) -> str:
    query = _text(doc, "query", where)
    template = string.Template(query)
    if not template.is_valid():
        raise TemplateError(f"{where}: query has a lone '$' (placeholders are $service, $version, $window)")
    used = set(template.get_identifiers())
    unknown = used - PLACEHOLDERS
    if unknown:
        raise TemplateError(
            f"{where}: query uses unknown placeholder(s) {', '.join(sorted('$' + u for u in unknown))}; "
            "known: $service, $version, $window"
        )
    if "version" not in used:
        raise TemplateError(f"{where}: query must select by $version, or canary and stable read the same series")
    return query


def _threshold(doc: Mapping[str, Any], kind: Kind, where: str) -> Threshold:
    raw = doc.get("threshold")
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: threshold is required and must be a mapping")
    where = f"{where}: threshold"
    allowed = {"max_z", "min_stdev", "min_points"} if kind is Kind.ZSCORE else {"absolute", "relative", "margin"}
    extra = set(raw) - allowed
    if extra:
        raise TemplateError(f"{where}: unknown key(s) {', '.join(sorted(extra))} for kind {kind.value}")
    if kind is Kind.ZSCORE:
        max_z = _number(raw, "max_z", where, minimum=0)
        if max_z is None or max_z == 0:
            raise TemplateError(f"{where}: max_z (above 0) is required for a zscore check")
        return Threshold(
            max_z=max_z,
            min_stdev=_number(raw, "min_stdev", where, minimum=0) or 0.0,
            min_points=_integer(raw, "min_points", where, minimum=2, default=3),
        )
    absolute = _number(raw, "absolute", where)
    relative = _number(raw, "relative", where, minimum=0)
    if (absolute is None) == (relative is None):
        raise TemplateError(f"{where}: give exactly one of absolute or relative")
    margin = _number(raw, "margin", where, minimum=0)
    if absolute is not None and margin is not None:
        raise TemplateError(f"{where}: margin goes with relative, not absolute")
    return Threshold(absolute=absolute, relative=relative, margin=margin or 0.0)


def parse_template(doc: Any, source: str) -> CheckTemplate:
    """One check from a parsed YAML document; every problem is a TemplateError naming ``source``."""
    if not isinstance(doc, dict):
        raise TemplateError(f"{source}: a template is a mapping of fields, got {type(doc).__name__}")
    extra = set(doc) - KEYS
    if extra:
        raise TemplateError(f"{source}: unknown field(s) {', '.join(sorted(extra))}; known: {', '.join(sorted(KEYS))}")
    name = _text(doc, "name", source)
    if not NAME.fullmatch(name):
        raise TemplateError(f"{source}: name {name!r} must be lower-case letters, digits and '-' (a metric label)")
    where = f"{source} ({name})"
    kind = _choice(doc, "kind", where, Kind)
    return CheckTemplate(
        name=name,
        description=_text(doc, "description", where),
        kind=kind,
        query=_query(doc, where),
        unit=_text(doc, "unit", where),
        comparison=_choice(doc, "comparison", where, Comparison),
        threshold=_threshold(doc, kind, where),
        interval_s=_integer(doc, "interval_s", where, minimum=1),
        failure_limit=_integer(doc, "failure_limit", where, minimum=0),
        source=source,
    )


def load_template_file(path: Path) -> CheckTemplate:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_template(doc, str(path))


def load_templates(directory: Path = TEMPLATES_DIR) -> tuple[CheckTemplate, ...]:
    """Every ``*.yaml`` check in ``directory``, by name; names must be unique."""
    if not directory.is_dir():
        raise TemplateError(f"{directory}: no such folder of analysis templates")
    checks = [load_template_file(path) for path in sorted(directory.glob("*.yaml"))]
    if not checks:
        raise TemplateError(f"{directory}: holds no *.yaml analysis template")
    seen: dict[str, str] = {}
    for check in checks:
        if check.name in seen:
            raise TemplateError(f"{check.source}: check name {check.name!r} is already used by {seen[check.name]}")
        seen[check.name] = check.source
    return tuple(sorted(checks, key=lambda c: c.name))
