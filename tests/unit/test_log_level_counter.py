"""log_records_total{level}: every record the root logger emits, counted once by level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from services.common.logs import LevelCounter, count_log_records


@pytest.fixture
def counted() -> Iterator[tuple[CollectorRegistry, LevelCounter]]:
    registry = CollectorRegistry()
    handler = count_log_records(registry)
    yield registry, handler
    logging.getLogger().removeHandler(handler)


def count(registry: CollectorRegistry, level: str) -> float | None:
    return registry.get_sample_value("log_records_total", {"level": level})


def test_every_level_starts_at_zero(counted: tuple[CollectorRegistry, LevelCounter]) -> None:
    registry, _ = counted
    for level in ("debug", "info", "warning", "error", "critical"):
        assert count(registry, level) == 0


def test_records_are_counted_by_level(counted: tuple[CollectorRegistry, LevelCounter]) -> None:
    registry, _ = counted
    log = logging.getLogger("services.test.counted")
    log.setLevel(logging.INFO)
    log.error("one")
    log.error("two")
    log.warning("three")
    log.debug("below the logger's level: never emitted, never counted")
    try:
        raise ValueError("x")
    except ValueError:
        log.exception("four")
    assert count(registry, "error") == 3
    assert count(registry, "warning") == 1
    assert count(registry, "debug") == 0


def test_a_custom_level_gets_its_own_label(counted: tuple[CollectorRegistry, LevelCounter]) -> None:
    registry, _ = counted
    logging.getLogger("services.test.counted").log(25, "between info and warning")
    assert count(registry, "level 25") == 1
