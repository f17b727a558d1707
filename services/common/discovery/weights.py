"""Choosing an instance by weight: a traffic split gives each version of a service its share.

A traffic split maps a version (the ``version`` key of an instance's metadata) to a non-negative
weight, e.g. ``{"1.4": 95, "1.5": 5}``: calls go to the versions in proportion to their weights,
and the instances of one version share its weight equally. Without a split every healthy instance
is equally likely. A split that leaves no running instance any weight (it names only versions that
are not running) is ignored: an instance of another version beats no answer at all.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence

from services.common.discovery.base import Instance, NoHealthyInstance

TrafficSplit = Mapping[str, float]  # version -> weight


class InvalidTrafficSplit(ValueError):
    pass


def validated_split(raw: object) -> dict[str, float]:
    """A split read from a registry or given by an operator: version names to finite weights >= 0."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidTrafficSplit("a traffic split is a non-empty object of version -> weight")
    split: dict[str, float] = {}
    for version, weight in raw.items():
        if not isinstance(version, str) or not version:
            raise InvalidTrafficSplit(f"version names are non-empty strings, got {version!r}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise InvalidTrafficSplit(f"the weight of {version!r} must be a number >= 0, got {weight!r}")
        split[version] = float(weight)
    if sum(split.values()) <= 0:
        raise InvalidTrafficSplit("at least one version needs a weight above 0")
    return split


def instance_weights(instances: Sequence[Instance], split: TrafficSplit | None) -> list[float]:
    """One weight per instance (same order); all 1.0 when there is no split to follow."""
    if not split:
        return [1.0] * len(instances)
    per_version = Counter(instance.meta.get("version", "") for instance in instances)
    weights = [
        split.get(version, 0.0) / per_version[version]
        for version in (instance.meta.get("version", "") for instance in instances)
    ]
    if sum(weights) <= 0:
        return [1.0] * len(instances)
    return weights


def choose(
    service: str, instances: Sequence[Instance], split: TrafficSplit | None, rng: random.Random | None = None
) -> Instance:
    if not instances:
        raise NoHealthyInstance(service)
    if len(instances) == 1:
        return instances[0]
    weights = instance_weights(instances, split)
    if rng is None:
        return random.choices(list(instances), weights=weights, k=1)[0]
    return rng.choices(list(instances), weights=weights, k=1)[0]
