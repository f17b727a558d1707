"""A network partition between two local services: a fault proxy in the path, put there through discovery.

Callers find an instance through the local registry (one JSON file per instance, kept alive by the
instance's heartbeat, which only touches the file). The partition rewrites the callee's files so
they give a blackholing fault proxy's address, and the heartbeat keeps them so; Prometheus' scrape
target is a separate file and stays on the real address, so the callee stays up and scraped. Only
the callers that go through discovery are cut off; the catalog's other callers of the callee (an
operator, a drill) use its address directly.

The original registrations are saved under ``<state>/faults/`` before anything changes, so a heal
from another process (a second drill run, the runner's final repair) restores them. A callee that
restarts re-registers its real address and so heals itself. The saved file names the drill's pid:
a partition whose drill died (``kill -9``; the proxies went with it) is healed by the next
``make up`` or partition.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.deploy_target.interface import PlatformError
from scripts.drills.fault_proxy import Mode, ProxyThread
from services.common import catalog
from services.common.discovery.base import Instance
from services.common.discovery.local import LocalRegistry

PROXY_HOST = "127.0.0.1"


def refusal(caller: str, callee: str) -> str | None:
    """Why this pair cannot be partitioned locally (None: it can)."""
    names = catalog.service_names()
    for name in (caller, callee):
        if name not in names:
            return f"{name} is not a Firedrill service"
    if callee not in catalog.service(caller).depends_on:
        return f"{caller} does not call {callee}: there is no path between them to cut"
    others = [s.name for s in catalog.SERVICES if callee in s.depends_on and s.name != caller]
    if others:
        return (
            f"{callee} is found through discovery by {', '.join(others)} too: a proxy in front of it "
            f"would cut them off as well, not only {caller}"
        )
    return None


class LocalPartition:
    def __init__(self, registry_dir: Path, faults_dir: Path, ttl_s: float) -> None:
        self._registry = LocalRegistry(registry_dir, ttl_s)  # no targets folder: scraping stays direct
        self._faults_dir = faults_dir
        self._proxies: dict[str, list[ProxyThread]] = {}

    def _saved(self, callee: str) -> Path:
        return self._faults_dir / f"partition-{callee}.json"

    def cut(self, caller: str, callee: str) -> list[int]:
        """Route the callee's registrations through blackholing proxies; returns the proxies' ports."""
        reason = refusal(caller, callee)
        if reason:
            raise PlatformError(f"cannot partition {caller} from {callee}: {reason}")
        self.heal_orphans()
        if self._saved(callee).exists():
            raise PlatformError(f"{callee} is already partitioned (heal it first: {self._saved(callee)})")
        instances = asyncio.run(self._registry.healthy_instances(callee))
        if not instances:
            raise PlatformError(f"{callee} has no healthy instance in the local registry to partition")
        self._faults_dir.mkdir(parents=True, exist_ok=True)
        # The proxies live in this process: the pid says whether a saved partition is still held.
        saved = {"pid": os.getpid(), "instances": [asdict(i) for i in instances]}
        self._saved(callee).write_text(json.dumps(saved))
        proxies = self._proxies.setdefault(callee, [])
        for instance in instances:
            proxy = ProxyThread(instance.host, instance.port, Mode.BLACKHOLE)
            port = proxy.start(PROXY_HOST)
            proxies.append(proxy)
            rerouted = Instance(instance.service, instance.instance_id, PROXY_HOST, port, dict(instance.meta))
            asyncio.run(self._registry.register(rerouted))
        return [p.port for p in proxies]

    def heal(self, callee: str) -> bool:
        """Give the callee's registrations back their real addresses; False when nothing was partitioned."""
        saved = self._saved(callee)
        proxies = self._proxies.pop(callee, [])
        for proxy in proxies:  # first let calls through: callers may still hold the proxy's address
            proxy.set_mode(Mode.PASS)
        healed = bool(proxies)
        if saved.exists():
            originals = [Instance(**entry) for entry in _saved_instances(saved)]
            current = {i.instance_id: i for i in asyncio.run(self._registry.healthy_instances(callee))}
            for original in originals:
                # Only entries still alive: a stopped instance deregistered itself and must stay gone.
                if original.instance_id in current:
                    asyncio.run(self._registry.register(original))
            saved.unlink()
            healed = True
        for proxy in proxies:  # their live connections are cut; callers retry on the real address
            proxy.stop()
        return healed

    def heal_orphans(self) -> list[str]:
        """Heal the partitions whose drill is gone (killed with ``kill -9``: its proxies died with it and the
        callee's registrations point at nothing); returns the callees healed."""
        healed = []
        for saved in sorted(self._faults_dir.glob("partition-*.json")):
            if not _holder_alive(saved):
                callee = saved.stem.removeprefix("partition-")
                self.heal(callee)
                healed.append(callee)
        return healed


def _saved_instances(saved: Path) -> list[dict[str, Any]]:
    data = json.loads(saved.read_text())
    return list(data["instances"] if isinstance(data, dict) else data)  # a list: saved before the pid was


def _holder_alive(saved: Path) -> bool:
    try:
        data = json.loads(saved.read_text())
    except (OSError, ValueError):
        return False
    pid = data.get("pid") if isinstance(data, dict) else None
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
