"""An anonymous flood against movie's HTTP front does not lock authenticated users out (issue 11).

The four movie services in this process (``MovieStack``); the flood is wrk from Debian (`make
setup`), or a bounded asyncio flood without it (``bench.movie_flood``, the same code the
benchmark runs). Loopback only; the flood stops when the user's reads are done (wrk's own
duration caps it otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from prometheus_client import generate_latest

from bench.movie_flood import front_answers, measure, paced_reads
from scripts.movie.stack import MovieStack
from services.common.grpc_auth import bearer_metadata
from services.genproto import movie_pb2, movie_pb2_grpc

pytestmark = pytest.mark.integration

READS = 200
# The shared budget stays the default (100/s, burst 100): the flood alone could drain it. The user
# reads at 50/s, under its own budget raised for the test so that the reads take 4 s, not 13.
MOVIE_ENV = {"FIREDRILL_RATE_LIMIT_CALLER_RPS": "100", "FIREDRILL_RATE_LIMIT_CALLER_BURST": "100"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[MovieStack]:
    running = await MovieStack(
        tmp_path,
        env={"movie": MOVIE_ENV},
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    ).start()
    yield running
    await running.close()


@pytest.mark.parametrize("flood", ["absent", "forged"])
async def test_authenticated_reads_succeed_during_an_anonymous_flood(stack: MovieStack, flood: str) -> None:
    token = await stack.token()
    async with stack.channel("metadata") as channel:
        record = movie_pb2.Metadata(id="tt1", title="The Matrix", description="red pill", director="Wachowskis")
        await movie_pb2_grpc.MetadataServiceStub(channel).PutMetadata(
            movie_pb2.PutMetadataRequest(metadata=record), metadata=bearer_metadata(token), timeout=10
        )
    url = stack.http_url("/movies/tt1")
    first = await paced_reads(url, token, requests=1, rate=1)
    assert first.statuses == {200: 1}

    registry = stack.running["movie"].metrics

    async def answered() -> float:
        return front_answers(generate_latest(registry).decode())

    result = await measure(url, token, flood, requests=READS, rate=50, connections=32, answered=answered)

    assert result["flood_report"]["lasted_the_whole_run"], result
    assert result["flood_report"]["requests"] > READS, result  # it was a flood
    assert result["user_requests"] == READS
    assert result["user_success_rate"] >= 0.99, result
