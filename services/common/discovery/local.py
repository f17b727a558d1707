"""A registry kept in a directory, shared by every process on this machine.

Each instance is one JSON file; a heartbeat touches it, and an instance whose file has not been
touched within the TTL is stale and no longer returned. A traffic split (``weights``) is one JSON
file per service under ``traffic/``, written by the canary driver. Registering also
writes a Prometheus file-discovery target. Deregistering removes the instance but keeps the
target: on the local platform a supervised service that is down should show as ``up == 0``.

A registry folder that is missing is an empty registry (and a heartbeat writes the instance
again); one that cannot be read or written (not a folder, no permission) is a registry that is
down: its calls raise ``DiscoveryError``, as the Consul registry's do when Consul is away.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from services.common.discovery.base import DiscoveryError, Instance
from services.common.discovery.weights import InvalidTrafficSplit, validated_split

T = TypeVar("T")


def _write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(tmp, path)


def file_sd_target(instance: Instance) -> list[dict[str, object]]:
    metrics_port = instance.meta.get("metrics_port", str(instance.port))
    host = f"[{instance.host}]" if ":" in instance.host else instance.host
    return [
        {
            "targets": [f"{host}:{metrics_port}"],
            "labels": {
                "service": instance.service,
                "instance_id": instance.instance_id,
                # Canary analysis compares series of two versions of one service by this label.
                "version": instance.meta.get("version", "unknown"),
                "__metrics_path__": instance.meta.get("metrics_path", "/metrics"),
            },
        }
    ]


def traffic_split_file(registry_root: Path, service: str) -> Path:
    return registry_root / "traffic" / f"{service}.json"


def write_traffic_split(registry_root: Path, service: str, split: dict[str, float] | None) -> None:
    """Set (or with None remove) the share of calls each version of ``service`` gets."""
    path = traffic_split_file(registry_root, service)
    if split is None:
        path.unlink(missing_ok=True)
        return
    _write_atomically(path, json.dumps({"service": service, "weights": validated_split(split)}))


def read_traffic_split(registry_root: Path, service: str) -> dict[str, float] | None:
    """The split written for ``service``; None when there is none or it cannot be read as one."""
    try:
        data = json.loads(traffic_split_file(registry_root, service).read_text(encoding="utf-8"))
        return validated_split(data.get("weights") if isinstance(data, dict) else None)
    except (FileNotFoundError, json.JSONDecodeError, InvalidTrafficSplit):
        return None


class LocalRegistry:
    def __init__(self, root: Path, ttl_s: float, targets_dir: Path | None = None) -> None:
        self._registry_root = root
        self._root = root / "instances"
        self._ttl_s = ttl_s
        self._targets_dir = targets_dir

    def _path(self, instance: Instance) -> Path:
        return self._root / instance.service / f"{instance.instance_id}.json"

    def _register(self, instance: Instance) -> None:
        _write_atomically(self._path(instance), json.dumps(asdict(instance)))
        if self._targets_dir is not None:
            target = self._targets_dir / f"{instance.instance_id}.json"
            _write_atomically(target, json.dumps(file_sd_target(instance)))

    def _heartbeat(self, instance: Instance) -> None:
        try:
            os.utime(self._path(instance))
        except FileNotFoundError:
            self._register(instance)  # the state dir was wiped under us: come back

    def _healthy(self, service: str) -> list[Instance]:
        now = time.time()
        found = []
        folder = self._root / service
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.name.endswith(".json"):
                continue
            try:
                if now - entry.stat().st_mtime > self._ttl_s:
                    continue
                data = json.loads(Path(entry.path).read_text(encoding="utf-8"))
            except (FileNotFoundError, json.JSONDecodeError):
                continue  # deregistered or being replaced right now
            found.append(Instance(**data))
        return sorted(found, key=lambda i: i.instance_id)

    def _deregister(self, instance: Instance) -> None:
        self._path(instance).unlink(missing_ok=True)

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise DiscoveryError(f"local registry {what} failed: {exc.__class__.__name__}: {exc.strerror}") from exc

    def healthy_instances_now(self, service: str) -> list[Instance]:
        """``healthy_instances`` for synchronous callers (operator scripts)."""
        return self._healthy(service)

    async def register(self, instance: Instance) -> None:
        await self._call("register", self._register, instance)

    async def deregister(self, instance: Instance) -> None:
        await self._call("deregister", self._deregister, instance)

    async def heartbeat(self, instance: Instance) -> None:
        await self._call("heartbeat", self._heartbeat, instance)

    async def healthy_instances(self, service: str) -> list[Instance]:
        return await self._call("lookup", self._healthy, service)

    async def traffic_split(self, service: str) -> dict[str, float] | None:
        return await self._call("traffic split read", read_traffic_split, self._registry_root, service)

    async def close(self) -> None:
        return None
