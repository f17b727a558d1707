"""The drills' user tokens: kept while they live, asked again before they expire (simulate-all
runs longer than a token's 15 minutes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.drills import actions


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    actions._TOKENS.clear()
    yield
    actions._TOKENS.clear()


def test_a_token_is_reused_for_half_its_life_then_replaced() -> None:
    issued: list[str] = []

    def fetch() -> tuple[str, float]:
        issued.append(f"token-{len(issued)}")
        return issued[-1], 1_000.0 + 900

    key = ("demo", "127.0.0.1:8084")
    assert actions.cached_token(key, fetch, now=1_000.0) == "token-0"
    assert actions.cached_token(key, fetch, now=1_000.0 + 449) == "token-0"
    assert actions.cached_token(key, fetch, now=1_000.0 + 450) == "token-1"
    assert actions.cached_token(("demo", "127.0.0.1:18084"), fetch, now=1_000.0) == "token-2"
