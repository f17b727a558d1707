"""Generated requests, well-formed and not, to every RPC: never INTERNAL or UNKNOWN, never a crash.

The stack runs on its own event loop in a background thread for the whole module; hypothesis
drives a synchronous test that submits each call to that loop.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.movie.stack import MovieStack, auth_metadata
from services.genproto import auth_pb2, movie_pb2

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

text = st.one_of(st.text(max_size=80), st.sampled_from(["", " ", "../x", "x" * 65, "tt1", "\x00", "é" * 70]))
ints = st.one_of(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.sampled_from([0, 1, 5, 6, -1]))
metadata_msg = st.builds(movie_pb2.Metadata, id=text, title=text, description=text, director=text)

REQUESTS: dict[str, tuple[str, Any]] = {
    "GetMetadata": (
        "/firedrill.movie.v1.MetadataService/GetMetadata",
        st.builds(movie_pb2.GetMetadataRequest, movie_id=text),
    ),
    "PutMetadata": (
        "/firedrill.movie.v1.MetadataService/PutMetadata",
        st.one_of(
            st.just(movie_pb2.PutMetadataRequest()), st.builds(movie_pb2.PutMetadataRequest, metadata=metadata_msg)
        ),
    ),
    "GetAggregatedRating": (
        "/firedrill.movie.v1.RatingService/GetAggregatedRating",
        st.builds(movie_pb2.GetAggregatedRatingRequest, record_id=text, record_type=ints),
    ),
    "PutRating": (
        "/firedrill.movie.v1.RatingService/PutRating",
        st.builds(movie_pb2.PutRatingRequest, user_id=text, record_id=text, record_type=ints, rating_value=ints),
    ),
    "GetMovieDetails": (
        "/firedrill.movie.v1.MovieService/GetMovieDetails",
        st.builds(movie_pb2.GetMovieDetailsRequest, movie_id=text),
    ),
    "RateMovie": (
        "/firedrill.movie.v1.MovieService/RateMovie",
        st.builds(movie_pb2.RateMovieRequest, movie_id=text, rating_value=ints),
    ),
    "GetToken": (
        "/firedrill.auth.v1.AuthService/GetToken",
        st.builds(auth_pb2.GetTokenRequest, username=text, password=text),
    ),
    "ValidateToken": (
        "/firedrill.auth.v1.AuthService/ValidateToken",
        st.builds(auth_pb2.ValidateTokenRequest, token=st.one_of(text, st.text(alphabet="abc.-_", max_size=300))),
    ),
}
SERVICE_OF = {"MetadataService": "metadata", "RatingService": "rating", "MovieService": "movie", "AuthService": "auth"}


class Harness:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tmp = tempfile.TemporaryDirectory(prefix="movie-fuzz-")
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        unlimited = {"FIREDRILL_RATE_LIMIT_RPS": "100000", "FIREDRILL_RATE_LIMIT_BURST": "100000"}
        unlimited |= {"FIREDRILL_RATE_LIMIT_CALLER_RPS": "100000", "FIREDRILL_RATE_LIMIT_CALLER_BURST": "100000"}
        env = {"movie": unlimited}
        # Generous login budget: the fuzzer fails logins on purpose, and the limit answers RESOURCE_EXHAUSTED anyway.
        env["auth"] = {"FIREDRILL_LOGIN_FAILURES_PER_MIN": "1000"}
        self.stack = self.run(MovieStack(Path(self.tmp.name), env=env, hasher=hasher, instrumentation=False).start())
        self.token = self.run(self.stack.token())
        self.channels = {name: self.run(self._channel(name)) for name in SERVICE_OF.values()}

    async def _channel(self, name: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.stack.address(name))

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    async def _call(self, method: str, payload: bytes, authenticated: bool) -> grpc.StatusCode:
        service = SERVICE_OF[method.split("/")[1].rsplit(".", 1)[1]]
        call = self.channels[service].unary_unary(method)
        try:
            await call(payload, metadata=auth_metadata(self.token) if authenticated else (), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    def call(self, method: str, payload: bytes, authenticated: bool = True) -> grpc.StatusCode:
        return self.run(self._call(method, payload, authenticated))

    def close(self) -> None:
        async def shutdown() -> None:
            for channel in self.channels.values():
                await channel.close()
            await self.stack.close()

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
def test_generated_requests_never_fail_internally(harness: Harness, rpc: str) -> None:
    method, strategy = REQUESTS[rpc]

    @FUZZ
    @given(message=strategy, authenticated=st.booleans())
    def check(message: Any, authenticated: bool) -> None:
        code = harness.call(method, message.SerializeToString(), authenticated)
        assert code not in BAD_CODES, (rpc, message, code)

    check()


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
def test_garbage_bytes_never_fail_internally(harness: Harness, rpc: str) -> None:
    method, _ = REQUESTS[rpc]

    @FUZZ
    @given(payload=st.binary(max_size=200))
    def check(payload: bytes) -> None:
        code = harness.call(method, payload)
        assert code not in BAD_CODES, (rpc, payload, code)

    check()


def test_services_still_answer_after_the_fuzzing(harness: Harness) -> None:
    request = movie_pb2.GetMovieDetailsRequest(movie_id="never-created").SerializeToString()
    assert harness.call("/firedrill.movie.v1.MovieService/GetMovieDetails", request) == grpc.StatusCode.NOT_FOUND
