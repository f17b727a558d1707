"""The job files in jobs/: reading them locally, and the variables a deployment passes to them.

Nomad parses the jobs (``/v1/jobs/parse``); locally we read them with python-hcl2 only to know
which jobs and variables exist, and for the static invariant tests. Variables are handed to
Nomad as the text of an HCL variables file, which ``encode_var_file`` writes.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2.utils import SerializationOptions

from scripts.cluster.jobgen.deployments import DEPLOYMENTS
from services.common import catalog
from services.common.config import TlsFiles
from services.common.tls import service_dns_name

REPO = Path(__file__).resolve().parents[2]
JOBS_DIR = REPO / "jobs"

# Tracing first (services look the collector up), then monitoring (incidents looks Prometheus up),
# then the services, callee before caller.
DEPLOY_ORDER: tuple[str, ...] = ("tracing", "monitoring", "incidents", "response", "hello", "movie")

# Where each catalog service or infra component runs: (job, group). Services: the job generator's
# deployment table (each service is the group of its name).
PLACEMENT: dict[str, tuple[str, str]] = {
    **{d.service: (d.job, d.service) for d in DEPLOYMENTS},
    "prometheus": ("monitoring", "prometheus"),
    "alertmanager": ("monitoring", "alertmanager"),
    "grafana": ("monitoring", "grafana"),
    "jaeger": ("tracing", "jaeger"),
    "otel-collector": ("tracing", "collector"),
}

# The generated Prometheus config that discovers targets through Consul.
PROMETHEUS_CONFIG = "prometheus-consul.yml"

_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)


class JobSpecError(Exception):
    """A job file is missing, unreadable or not what the deploy tooling expects."""


def load_hcl(path: Path, options: SerializationOptions = _OPTIONS) -> dict[str, Any]:
    """An HCL file as plain Python data (by default string values without their quotes)."""
    try:
        with path.open(encoding="utf-8") as handle:
            data: dict[str, Any] = hcl2.load(handle, serialization_options=options)
    except OSError as exc:
        raise JobSpecError(f"cannot read {path}: {exc.strerror}") from None
    except Exception as exc:  # python-hcl2 raises lark errors of several kinds
        raise JobSpecError(f"{path} is not valid HCL: {exc}") from exc
    return data


def labelled(blocks: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, body) of every block in a list of labelled blocks (``group "x" {}`` ...)."""
    for block in blocks or []:
        for label, body in block.items():
            yield label.strip('"'), body


@dataclass(frozen=True, slots=True)
class JobFile:
    path: Path
    name: str
    variables: dict[str, dict[str, Any]]
    body: dict[str, Any]

    @property
    def groups(self) -> dict[str, dict[str, Any]]:
        return dict(labelled(self.body.get("group")))

    def tasks(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for group_name, group in self.groups.items():
            for task_name, task in labelled(group.get("task")):
                yield group_name, task_name, task

    def services(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(group, service block) for services declared at group or task level."""
        for group_name, group in self.groups.items():
            for service in group.get("service", []):
                yield group_name, service
            for _task_name, task in labelled(group.get("task")):
                for service in task.get("service", []):
                    yield group_name, service


def read_job(path: Path) -> JobFile:
    data = load_hcl(path)
    jobs = list(labelled(data.get("job")))
    if len(jobs) != 1:
        raise JobSpecError(f"{path} must declare exactly one job, found {len(jobs)}")
    name, body = jobs[0]
    variables = dict(labelled(data.get("variable")))
    return JobFile(path=path, name=name, variables=variables, body=body)


def job_files(jobs_dir: Path = JOBS_DIR) -> dict[str, Path]:
    found = {p.name.removesuffix(".nomad.hcl"): p for p in sorted(jobs_dir.glob("*.nomad.hcl"))}
    if not found:
        raise JobSpecError(f"no *.nomad.hcl files in {jobs_dir}")
    return found


def ordered(names: list[str] | tuple[str, ...]) -> list[str]:
    """Jobs in deployment order; unknown names keep their relative order at the end."""
    rank = {name: i for i, name in enumerate(DEPLOY_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


# --- variables ---------------------------------------------------------------------------------------


def _hcl_string(value: str) -> str:
    """A quoted HCL string literal: JSON escapes, plus HCL's template markers escaped."""
    return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def _hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_hcl_string(str(k))} = {_hcl_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_hcl_value(v) for v in value) + "]"
    raise JobSpecError(f"cannot encode {type(value).__name__} as an HCL variable value")


def encode_var_file(variables: Mapping[str, Any]) -> str:
    """The text of an HCL variables file (what ``nomad job run -var-file`` reads)."""
    return "".join(f"{name} = {_hcl_value(value)}\n" for name, value in sorted(variables.items()))


def read_tree(root: Path, pattern: str = "**/*") -> dict[str, str]:
    """Every file under ``root`` matching ``pattern``, by path relative to ``root``."""
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.glob(pattern))
        if p.is_file() and not p.name.startswith(".")
    }


# The generated production Alertmanager config addresses the incident receiver by Consul DNS and
# catalog port; on the cluster incidents has a dynamic port and serves mutual TLS, so the URL becomes
# a consul-template lookup (the monitoring job renders alertmanager.yml with [[ ]] delimiters). While
# incidents is not registered (monitoring deploys first) the URL falls back to its Consul name on the
# catalog port: a URL amtool accepts, whose deliveries fail and are retried until the template
# re-renders with the registered address. An empty host would make Alertmanager refuse the file.
INCIDENTS_FALLBACK = f"https://{service_dns_name('incidents')}:{catalog.service('incidents').port}"
INCIDENTS_LOOKUP = (
    '[[ with service "incidents" ]][[ with index . 0 ]]https://[[ .Address ]]:[[ .Port ]][[ end ]]'
    f"[[ else ]]{INCIDENTS_FALLBACK}[[ end ]]"
)
# Where jobs/monitoring.nomad.hcl renders Alertmanager's certificate from pki_int/issue/alertmanager,
# as the Alertmanager container sees it (Nomad mounts the task's secrets/ at /secrets).
ALERTMANAGER_TLS = TlsFiles(
    cert=Path("/secrets/tls/cert.pem"), key=Path("/secrets/tls/key.pem"), ca=Path("/secrets/tls/ca.pem")
)
# The name Alertmanager checks in incidents' certificate: the webhook URL is a Consul-looked-up IP,
# and an IP SAN alone would match any service's certificate on that node.
INCIDENTS_SERVER_NAME = service_dns_name("incidents")


def cluster_alertmanager(text: str, tls: TlsFiles = ALERTMANAGER_TLS) -> str:
    """Adapt the generated alertmanager.yml to the cluster: incidents from Consul over mutual TLS.

    The incidents webhook gets the Consul lookup of the service's address and a ``tls_config`` with
    Alertmanager's own certificate (the keys of ``scripts.monitoring.alertmanager_config._webhook``
    plus ``server_name``); its certificate is verified, never skipped. Templates sit beside the file.
    Raises JobSpecError when the config has no webhook to incidents (nothing would become an incident).
    """
    config = yaml.safe_load(text) or {}
    config["templates"] = ["templates/*.tmpl"]
    found = 0
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            url = urllib.parse.urlsplit(str(hook.get("url", "")))
            if url.hostname == INCIDENTS_SERVER_NAME:
                hook["url"] = INCIDENTS_LOOKUP + url.path
                hook["http_config"] = {
                    "tls_config": {
                        "ca_file": str(tls.ca),
                        "cert_file": str(tls.cert),
                        "key_file": str(tls.key),
                        "server_name": INCIDENTS_SERVER_NAME,
                    }
                }
                found += 1
    if not found:
        raise JobSpecError("alertmanager.yml has no webhook to the incidents service: regenerate the monitoring files")
    header = (
        "# Adapted for the cluster by scripts/cluster/jobspec.py from the generated production config:\n"
        "# the incidents webhook on mutual TLS with Alertmanager's pki_int certificate.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, width=1_000_000)


def monitoring_files(repo: Path, profile: str) -> dict[str, dict[str, str]]:
    """The generated Prometheus/Alertmanager files and the Grafana dashboards, for the monitoring job."""
    generated = read_tree(repo / "prometheus" / "generated" / profile)
    # Cluster Prometheus: the consul_sd_configs variant and the rules; promtool tests stay home.
    prometheus = {
        name: body for name, body in generated.items() if name == PROMETHEUS_CONFIG or name.startswith("rules/")
    }
    am_generated = read_tree(repo / "alertmanager" / "generated" / profile)
    missing = [
        path
        for path, present in (
            (f"prometheus/generated/{profile}/{PROMETHEUS_CONFIG}", PROMETHEUS_CONFIG in prometheus),
            (f"alertmanager/generated/{profile}/alertmanager.yml", "alertmanager.yml" in am_generated),
        )
        if not present
    ]
    if missing:
        raise JobSpecError(f"missing {', '.join(missing)}: generate them first (python -m scripts.monitoring render)")
    alertmanager = {"alertmanager.yml": cluster_alertmanager(am_generated["alertmanager.yml"])}
    for name, body in read_tree(repo / "alertmanager" / "templates", "*.tmpl").items():
        alertmanager[f"templates/{name}"] = body
    return {
        "prometheus_files": prometheus,
        "alertmanager_files": alertmanager,
        "grafana_dashboards": read_tree(repo / "grafana" / "dashboards", "**/*.json"),
    }


def variables_for(
    job: JobFile,
    *,
    profile: str,
    image: str | None,
    overrides: Mapping[str, str],
    repo: Path = REPO,
) -> dict[str, Any]:
    """The variables a deployment passes to ``job``: only those the job declares."""
    wanted: dict[str, Any] = {"profile": profile}
    if image:
        wanted["image"] = image
    if job.name == "monitoring":
        wanted.update(monitoring_files(repo, profile))
    for key, value in overrides.items():
        if key not in job.variables:
            continue
        wanted[key] = _coerce(job.variables[key], value)
    return {k: v for k, v in wanted.items() if k in job.variables}


def _coerce(declaration: dict[str, Any], raw: str) -> Any:
    kind = str(declaration.get("type", "string")).strip("${}")
    if kind == "number":
        try:
            return float(raw) if "." in raw else int(raw)
        except ValueError:
            raise JobSpecError(f"expected a number, got {raw!r}") from None
    if kind == "bool":
        if raw.lower() not in {"true", "false"}:
            raise JobSpecError(f"expected true or false, got {raw!r}")
        return raw.lower() == "true"
    if kind.startswith(("list", "map", "set", "object")):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise JobSpecError(f"expected JSON for a {kind} variable, got {raw!r}") from None
    return raw
