"""The registry going away: callers keep the instances it last named, and the outage is measured.

The local registry is made unavailable the way the registry-down drill does it
(``scripts.local.registry_hold``), so these tests run the same code the drill breaks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from scripts.drills import dependencies
from scripts.drills.recorder import RECORDER
from scripts.local import registry_hold
from services.common.discovery import DiscoveryError, Instance, NoHealthyInstance
from services.common.discovery.cache import InstanceCache, RegistryUnreachable
from services.common.discovery.local import LocalRegistry, write_traffic_split
from services.common.discovery.observed import ObservedRegistry, RegistryHealth, RegistryMetrics
from tests.unit.helpers import Clock

TTL_S = 5.0


def _instance(port: int, service: str = "response") -> Instance:
    return Instance(service, f"{service}-127.0.0.1-{port}", "127.0.0.1", port, {"metrics_path": "/metrics"})


class Observed:
    """A LocalRegistry behind ObservedRegistry with its own metrics registry and a hand-moved clock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = Clock(1000.0)
        self.metrics = CollectorRegistry()
        self.health = RegistryHealth(settle_s=TTL_S, clock=self.clock)
        self.registry = ObservedRegistry(
            LocalRegistry(root, ttl_s=TTL_S), self.health, RegistryMetrics("hello", self.metrics)
        )

    def reachable(self) -> float | None:
        return self.metrics.get_sample_value("discovery_registry_reachable", {"service": "hello"})

    def errors(self, operation: str) -> float | None:
        return self.metrics.get_sample_value(
            "discovery_registry_errors_total", {"service": "hello", "operation": operation}
        )


@pytest.fixture
def observed(tmp_path: Path) -> Observed:
    return Observed(tmp_path / "registry")


async def test_a_held_registry_fails_every_call_as_consul_being_down_does(observed: Observed) -> None:
    instance = _instance(6060)
    await observed.registry.register(instance)
    registry_hold.hold(observed.root)
    with pytest.raises(DiscoveryError, match="local registry lookup failed: NotADirectoryError"):
        await observed.registry.healthy_instances("response")
    with pytest.raises(DiscoveryError, match="heartbeat failed"):
        await observed.registry.heartbeat(instance)
    with pytest.raises(DiscoveryError, match="register failed"):
        await observed.registry.register(_instance(6061))
    assert observed.reachable() == 0
    assert observed.errors("lookup") == 1
    assert observed.errors("heartbeat") == 1
    assert registry_hold.release(observed.root) is True
    assert registry_hold.release(observed.root) is False  # idempotent
    await observed.registry.heartbeat(instance)
    assert await observed.registry.healthy_instances("response") == [instance]
    assert observed.reachable() == 1


async def test_a_missing_registry_folder_is_empty_not_down(observed: Observed) -> None:
    assert await observed.registry.healthy_instances("response") == []
    assert observed.reachable() == 1
    assert observed.errors("lookup") is None


async def test_callers_keep_the_instances_the_registry_last_named_while_it_is_down(observed: Observed) -> None:
    first, second = _instance(6060), _instance(6061)
    for instance in (first, second):
        await observed.registry.register(instance)
    cache = InstanceCache(observed.registry, max_age_s=0)  # every call asks the registry
    assert await cache.instances("response") == [first, second]
    registry_hold.hold(observed.root)
    assert await cache.instances("response") == [first, second]
    cache.forget("response")  # a refused connection does not throw the fallback away
    assert (await cache.pick("response", avoid=first)) == second
    assert observed.errors("lookup") == 2


async def test_with_the_registry_down_and_nothing_known_the_caller_learns_why(observed: Observed) -> None:
    cache = InstanceCache(observed.registry, max_age_s=0)
    registry_hold.hold(observed.root)
    with pytest.raises(RegistryUnreachable, match="registry is unreachable") as raised:
        await cache.pick("response")
    assert isinstance(raised.value, NoHealthyInstance)  # callers wait and answer 503 as for no instance


async def test_right_after_an_outage_an_empty_answer_is_the_outage_until_heartbeats_arrive(observed: Observed) -> None:
    instance = _instance(6060)
    await observed.registry.register(instance)
    cache = InstanceCache(observed.registry, max_age_s=0)
    assert await cache.instances("response") == [instance]
    registry_hold.hold(observed.root)
    assert await cache.instances("response") == [instance]
    registry_hold.release(observed.root)
    record = observed.root / "instances" / "response" / f"{instance.instance_id}.json"
    stale = record.stat().st_mtime - 2 * TTL_S  # every heartbeat was missed meanwhile
    os.utime(record, (stale, stale))
    assert await observed.registry.healthy_instances("response") == []
    assert await cache.instances("response") == [instance]  # settling: the registry's silence is the outage
    observed.clock.now += TTL_S
    assert await cache.instances("response") == []  # settled: no heartbeat for a TTL means it is gone


async def test_a_healthy_registry_saying_no_instance_is_believed(observed: Observed) -> None:
    instance = _instance(6060)
    await observed.registry.register(instance)
    cache = InstanceCache(observed.registry, max_age_s=0)
    assert await cache.instances("response") == [instance]
    await observed.registry.deregister(instance)
    assert await cache.instances("response") == []
    with pytest.raises(NoHealthyInstance):
        await cache.pick("response")


def test_holding_merges_what_a_heartbeat_writes_in_between(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "registry"
    (root / "instances" / "response").mkdir(parents=True)
    (root / "instances" / "response" / "a.json").write_text("old")
    real_rename = os.rename
    raced: list[bool] = []

    def rename_after_a_heartbeat(source: str | Path, target: str | Path) -> None:
        if Path(source).name == ".instances-unavailable" and not raced:
            raced.append(True)  # a service re-registers between the two moves
            (root / "instances" / "response").mkdir(parents=True)
            (root / "instances" / "response" / "a.json").write_text("new")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename_after_a_heartbeat)
    registry_hold.hold(root)
    assert raced
    assert (root / "instances").is_file()
    assert (root / "instances.held" / "response" / "a.json").read_text() == "new"
    registry_hold.hold(root)  # idempotent
    monkeypatch.setattr(os, "rename", real_rename)
    assert registry_hold.release(root)
    assert (root / "instances" / "response" / "a.json").read_text() == "new"
    assert not (root / "instances.held").exists()


class _Refusing:
    name = "nomad"

    def refuses(self, unit: str) -> str | None:
        return "Vault is not a Nomad job" if unit == "vault" else None


def test_a_platform_that_cannot_stop_the_dependency_makes_the_drill_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RECORDER, "platform", _Refusing())
    monkeypatch.setattr(RECORDER, "endpoints", object())
    assert dependencies.platform_can_stop("vault") == "the nomad platform cannot stop vault: Vault is not a Nomad job"
    assert dependencies.platform_can_stop("hello") is True


async def test_the_traffic_split_last_read_holds_while_the_registry_is_down(observed: Observed) -> None:
    stable = Instance("response", "response-stable", "127.0.0.1", 6061, {"version": "1"})
    canary = Instance("response", "response-canary", "127.0.0.1", 6062, {"version": "2"})
    for instance in (stable, canary):
        await observed.registry.register(instance)
    write_traffic_split(observed.root, "response", {"1": 0, "2": 100})
    cache = InstanceCache(observed.registry, max_age_s=0.0)
    assert await cache.pick("response") == canary
    registry_hold.hold(observed.root)
    try:
        picks = {(await cache.pick("response")).instance_id for _ in range(20)}
    finally:
        registry_hold.release(observed.root)
    assert picks == {canary.instance_id}  # a split forgotten in the outage would send half of these to stable
