from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from services.common.discovery import Instance, NoHealthyInstance
from services.common.discovery.cache import InstanceCache
from services.common.discovery.local import LocalRegistry


def _instance(port: int, service: str = "response") -> Instance:
    return Instance(service, f"{service}-127.0.0.1-{port}", "127.0.0.1", port, {"metrics_path": "/metrics"})


async def test_register_heartbeat_deregister(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry", ttl_s=5, targets_dir=tmp_path / "targets")
    first, second = _instance(6060), _instance(6061)
    await registry.register(first)
    await registry.register(second)
    assert await registry.healthy_instances("response") == [first, second]
    await registry.deregister(first)
    assert await registry.healthy_instances("response") == [second]
    assert await registry.healthy_instances("unknown") == []


async def test_stale_instances_are_not_returned_until_they_heartbeat(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path, ttl_s=5)
    instance = _instance(6060)
    await registry.register(instance)
    record = tmp_path / "instances" / "response" / f"{instance.instance_id}.json"
    old = time.time() - 6
    os.utime(record, (old, old))
    assert await registry.healthy_instances("response") == []
    await registry.heartbeat(instance)
    assert await registry.healthy_instances("response") == [instance]


async def test_heartbeat_reregisters_after_state_was_wiped(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path, ttl_s=5)
    instance = _instance(6060)
    await registry.register(instance)
    (tmp_path / "instances" / "response" / f"{instance.instance_id}.json").unlink()
    await registry.heartbeat(instance)
    assert await registry.healthy_instances("response") == [instance]


async def test_file_sd_target_stays_after_deregistration(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry", ttl_s=5, targets_dir=tmp_path / "targets")
    instance = Instance("metadata", "metadata-1", "127.0.0.1", 8081, {"metrics_port": "9181", "version": "1.4"})
    await registry.register(instance)
    await registry.deregister(instance)
    target = json.loads((tmp_path / "targets" / "metadata-1.json").read_text())
    assert target == [
        {
            "targets": ["127.0.0.1:9181"],
            "labels": {
                "service": "metadata",
                "instance_id": "metadata-1",
                "version": "1.4",
                "__metrics_path__": "/metrics",
            },
        }
    ]


async def test_cache_answers_from_memory_and_forgets_on_demand(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path, ttl_s=5)
    cache = InstanceCache(registry, max_age_s=60)
    with pytest.raises(NoHealthyInstance):
        await cache.pick("response")
    await registry.register(_instance(6060))
    with pytest.raises(NoHealthyInstance):  # still the cached empty answer
        await cache.pick("response")
    cache.forget("response")
    assert (await cache.pick("response")).port == 6060


async def test_pick_avoids_the_instance_that_just_failed(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path, ttl_s=5)
    bad, good = _instance(6060), _instance(6061)
    await registry.register(bad)
    await registry.register(good)
    cache = InstanceCache(registry, max_age_s=60)
    assert all([await cache.pick("response", avoid=bad) == good for _ in range(20)])
