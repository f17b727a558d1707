"""Weighted selection from discovery: the canary gets its step's share of calls."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from services.common.discovery.base import Instance, NoHealthyInstance, pick_instance
from services.common.discovery.cache import InstanceCache
from services.common.discovery.local import LocalRegistry, read_traffic_split, write_traffic_split
from services.common.discovery.memory import MemoryRegistry
from services.common.discovery.weights import InvalidTrafficSplit, choose, instance_weights, validated_split

DRAWS = 20_000


def _instance(port: int, version: str) -> Instance:
    return Instance("response", f"response-{port}", "127.0.0.1", port, {"version": version})


STABLE = _instance(6060, "1")
CANARY = _instance(7060, "2")


def _canary_share(instances: list[Instance], split: dict[str, float], seed: int) -> float:
    rng = random.Random(seed)
    hits = sum(choose("response", instances, split, rng).meta["version"] == "2" for _ in range(DRAWS))
    return hits / DRAWS


@pytest.mark.parametrize("percent", [1, 5, 10, 25, 50])
def test_the_canary_gets_its_share_of_calls_within_four_standard_deviations(percent: int) -> None:
    expected = percent / 100
    share = _canary_share([STABLE, CANARY], {"1": 100 - percent, "2": percent}, seed=percent)
    bound = 4 * math.sqrt(expected * (1 - expected) / DRAWS)
    assert abs(share - expected) <= bound, f"{share:.4f} vs {expected:.2f} ± {bound:.4f}"


def test_at_100_percent_every_call_goes_to_the_canary_and_at_0_none() -> None:
    assert _canary_share([STABLE, CANARY], {"1": 0, "2": 100}, seed=1) == 1.0
    assert _canary_share([STABLE, CANARY], {"1": 100, "2": 0}, seed=1) == 0.0


def test_instances_of_one_version_share_its_weight() -> None:
    second_stable = _instance(6061, "1")
    assert instance_weights([STABLE, second_stable, CANARY], {"1": 90, "2": 10}) == [45.0, 45.0, 10.0]
    share = _canary_share([STABLE, second_stable, CANARY], {"1": 90, "2": 10}, seed=7)
    assert abs(share - 0.10) <= 4 * math.sqrt(0.1 * 0.9 / DRAWS)


def test_without_a_split_or_with_one_naming_no_running_version_every_instance_is_equally_likely() -> None:
    assert instance_weights([STABLE, CANARY], None) == [1.0, 1.0]
    assert instance_weights([STABLE, CANARY], {"3": 100}) == [1.0, 1.0]
    assert abs(_canary_share([STABLE, CANARY], {"3": 100}, seed=3) - 0.5) <= 4 * math.sqrt(0.25 / DRAWS)


def test_a_version_missing_from_the_split_gets_no_calls_while_another_has_weight() -> None:
    assert instance_weights([STABLE, CANARY], {"1": 100}) == [100.0, 0.0]


def test_no_instance_is_an_error() -> None:
    with pytest.raises(NoHealthyInstance):
        choose("response", [], {"1": 100})


@pytest.mark.parametrize(
    "raw",
    [None, {}, [], {"1": -1}, {"1": "ten"}, {"1": float("nan")}, {"1": True}, {"": 5}, {"1": 0, "2": 0}],
)
def test_invalid_splits_are_refused(raw: object) -> None:
    with pytest.raises(InvalidTrafficSplit):
        validated_split(raw)


def test_the_local_registry_keeps_the_split_in_a_file_and_ignores_a_broken_one(tmp_path: Path) -> None:
    write_traffic_split(tmp_path, "response", {"1": 95, "2": 5})
    assert read_traffic_split(tmp_path, "response") == {"1": 95.0, "2": 5.0}
    assert read_traffic_split(tmp_path, "hello") is None
    (tmp_path / "traffic" / "response.json").write_text("{not json")
    assert read_traffic_split(tmp_path, "response") is None
    write_traffic_split(tmp_path, "response", None)
    assert not (tmp_path / "traffic" / "response.json").exists()


async def test_the_local_registry_picks_by_its_split(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path, ttl_s=60)
    await registry.register(STABLE)
    await registry.register(CANARY)
    write_traffic_split(tmp_path, "response", {"1": 0, "2": 100})
    assert await registry.traffic_split("response") == {"1": 0.0, "2": 100.0}
    assert {(await pick_instance(registry, "response")).instance_id for _ in range(20)} == {CANARY.instance_id}


async def test_the_instance_cache_follows_the_split_and_still_avoids_the_instance_that_failed() -> None:
    registry = MemoryRegistry()
    await registry.register(STABLE)
    await registry.register(CANARY)
    registry.splits["response"] = {"1": 0, "2": 100}
    cache = InstanceCache(registry, max_age_s=60)
    assert {(await cache.pick("response")).instance_id for _ in range(20)} == {CANARY.instance_id}
    # A retry after the canary failed goes to stable although stable's weight is 0: an answer beats none.
    assert await cache.pick("response", avoid=CANARY) == STABLE
