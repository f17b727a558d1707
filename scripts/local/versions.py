"""Which version of each service the local platform runs, and the new versions running beside them.

The local platform has no images: a version is a name a service reports (``FIREDRILL_VERSION``,
its discovery metadata, the ``version`` label of its series). Two files under
``<state>/deployments/`` say what runs, so ``make up`` keeps a deployed version and a rollout in
flight: ``versions.json`` (service -> stable version) and ``canaries.json`` (service -> the new
version started beside stable, with its ports).

For drills a version can carry a fault built in from its start, by its name's suffix:
``-bad-errors`` fails a share of calls (response only: its fault switch,
``services/response/faults.py``), ``-bad-latency`` answers slowly (response, metadata, rating).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from scripts.local.programs import ProgramSpec, StateLayout, local_url, service_environment, variables_read_by
from services.common import catalog
from services.common.config import VERSION_PATTERN

BAD_ERRORS_SUFFIX = "-bad-errors"
BAD_LATENCY_SUFFIX = "-bad-latency"
BAD_ERROR_RATIO = 0.5
BAD_LATENCY_MS = 400


class VersionError(ValueError):
    pass


def check_version(service: str, version: str) -> None:
    if not VERSION_PATTERN.fullmatch(version):
        raise VersionError(
            f"version {version!r}: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    missing = set(built_in_fault(version)) - variables_read_by(catalog.service(service))
    if missing:
        raise VersionError(f"{version!r} asks for a built-in fault {service} has no setting for ({', '.join(missing)})")


def built_in_fault(version: str) -> dict[str, str]:
    """The start-up fault variables a version's name asks for (empty for a good version)."""
    if version.endswith(BAD_ERRORS_SUFFIX):
        return {"FIREDRILL_FAULT_ERROR_RATIO": str(BAD_ERROR_RATIO)}
    if version.endswith(BAD_LATENCY_SUFFIX):
        return {"FIREDRILL_FAULT_LATENCY_MS": str(BAD_LATENCY_MS)}
    return {}


def version_environment(version: str) -> dict[str, str]:
    return {"FIREDRILL_VERSION": version, **built_in_fault(version)}


@dataclass(frozen=True, slots=True)
class Canary:
    """A new version running beside the stable one, on its own ports."""

    service: str
    version: str
    port: int
    metrics_port: int
    http_port: int | None = None

    @property
    def program(self) -> str:
        return canary_program_name(self.service)


def canary_program_name(service: str) -> str:
    return f"{service}-canary"


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise VersionError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise VersionError(f"{path} must hold a JSON object")
    return data


class DeployedVersions:
    """The two files, read and written whole (one operator deploys one service at a time)."""

    def __init__(self, state: StateLayout) -> None:
        self._folder = state.root / "deployments"

    @property
    def folder(self) -> Path:
        return self._folder

    def stable(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in _read_json(self._folder / "versions.json").items()}

    def set_stable(self, service: str, version: str | None) -> None:
        versions = self.stable()
        if version is None:
            versions.pop(service, None)
        else:
            versions[service] = version
        _write_json(self._folder / "versions.json", versions)

    def canaries(self) -> dict[str, Canary]:
        found = {}
        for service, raw in _read_json(self._folder / "canaries.json").items():
            if not isinstance(raw, dict):
                raise VersionError(f"canaries.json: the entry of {service!r} must be an object")
            found[str(service)] = Canary(**raw)
        return found

    def set_canary(self, service: str, canary: Canary | None) -> None:
        canaries = {name: asdict(c) for name, c in self.canaries().items()}
        if canary is None:
            canaries.pop(service, None)
        else:
            canaries[service] = asdict(canary)
        _write_json(self._folder / "canaries.json", canaries)


def stable_environment(state: StateLayout, service: str) -> dict[str, str]:
    """What a catalog service's program adds for its deployed version (nothing before any deployment)."""
    version = DeployedVersions(state).stable().get(service)
    return version_environment(version) if version is not None else {}


def canary_programs(state: StateLayout, profile: str, service_env: dict[str, dict[str, str]]) -> list[ProgramSpec]:
    """One supervised program per canary: the service's program on its own ports, at its version."""
    programs = []
    for canary in DeployedVersions(state).canaries().values():
        spec = catalog.service(canary.service)
        env = {
            **service_environment(spec, state, profile),
            **service_env.get(spec.name, {}),
            **version_environment(canary.version),
            "FIREDRILL_PORT": str(canary.port),
            "FIREDRILL_METRICS_PORT": str(canary.metrics_port),
            "FIREDRILL_TRACE_FILE": str(state.trace_file(canary.program)),
        }
        if canary.http_port is not None:
            env["FIREDRILL_HTTP_PORT"] = str(canary.http_port)
        ports = tuple(p for p in (canary.port, canary.metrics_port, canary.http_port) if p is not None)
        programs.append(
            ProgramSpec(
                name=canary.program,
                command=(sys.executable, "-m", spec.module),
                ports=ports,
                health_url=local_url(canary.metrics_port, spec.health_path),
                env=env,
                priority=250,
            )
        )
    return programs
