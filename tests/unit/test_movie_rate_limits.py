"""The gateway's admission order on both fronts: authenticate, then the caller's budget, then the
shared one; refused tokens spend only their address's budget, and are refused before verification
once it is empty (issue 11: an anonymous client used to lock every user out)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.auth_tokens import Identity, InvalidToken
from services.common.grpc_auth import bearer_metadata
from services.common.grpc_rate_limit import peer_address
from services.common.grpc_server import GrpcServer, ServerOptions
from services.common.ratelimit import Budget, CallerLimits, KnownTokens, address_key
from services.movie.controller import MovieController
from services.movie.http import create_http_app
from services.movie.model import MovieDetails, MovieMetadata
from tests.unit.helpers import Clock, service_config

USERS = {"token-alice": "alice", "token-bob": "bob"}
EXPIRES_AT = 2_000_000_000
FORGED = "forged.token.value"


class CountingAuthenticator:
    """Knows two users' tokens; counts every verification (the CPU a flood would cost)."""

    def __init__(self) -> None:
        self.verifications = 0

    async def authenticate(self, token: str) -> Identity:
        self.verifications += 1
        if token not in USERS:
            raise InvalidToken("bad token signature")
        return Identity(USERS[token], EXPIRES_AT)


def limits(*, total: int = 100, caller: int = 100, address: int = 100) -> CallerLimits:
    frozen = Clock()  # no refill during a test: every budget is exactly its burst
    return CallerLimits(
        Budget(1.0, total), Budget(1.0, caller), Budget(1.0, address), clock=frozen, wall_clock=Clock(1e9)
    )


Call = Callable[[str | None], Awaitable[str]]  # token (None: no header) -> "ok" | "unauthenticated" | "exhausted"


class FakeController:
    async def get_details(self, movie_id: str, caller: Any, deadline: float) -> MovieDetails:
        return MovieDetails(MovieMetadata(movie_id, "t", "d", "x"), None, 0, True)


async def http_front(tmp_path: Path, policy: CallerLimits, auth: CountingAuthenticator) -> AsyncIterator[Call]:
    app = create_http_app(
        cast(MovieController, FakeController()),
        auth,
        policy,
        service=service_config("movie", tmp_path, instrumentation=False),
        default_deadline_s=1.0,
        tracer_provider=None,
        registry=CollectorRegistry(),
    )
    outcomes = {200: "ok", 401: "unauthenticated", 429: "exhausted"}
    async with TestClient(TestServer(app)) as client:

        async def call(token: str | None) -> str:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            response = await client.get("/movies/tt1", headers=headers)
            return outcomes.get(response.status, str(response.status))

        yield call


async def grpc_front(tmp_path: Path, policy: CallerLimits, auth: CountingAuthenticator) -> AsyncIterator[Call]:
    server = GrpcServer("movie", ServerOptions(instrumentation=False, authenticator=auth, rate_limit=policy))

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler("test.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)})
    server.server.add_generic_rpc_handlers((handler,))
    port = await server.start("127.0.0.1", 0)
    outcomes = {
        grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
        grpc.StatusCode.RESOURCE_EXHAUSTED: "exhausted",
    }
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            method = channel.unary_unary("/test.Echo/Call")

            async def call(token: str | None) -> str:
                try:
                    await method(b"x", metadata=bearer_metadata(token) if token is not None else (), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    code: grpc.StatusCode = exc.code()
                    return outcomes.get(code, str(code))
                return "ok"

            yield call
    finally:
        await server.stop(0)


FRONTS = {"http": http_front, "grpc": grpc_front}


@pytest.fixture(params=sorted(FRONTS))
def front(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def outcomes_of(
    front: str, tmp_path: Path, policy: CallerLimits, auth: CountingAuthenticator, tokens: Sequence[str | None]
) -> list[str]:
    results = []
    async for call in FRONTS[front](tmp_path, policy, auth):
        for token in tokens:
            results.append(await call(token))
    return results


async def test_unauthenticated_requests_never_spend_the_shared_budget(front: str, tmp_path: Path) -> None:
    policy = limits(total=3, address=1000)
    tokens = [None] * 20 + [FORGED] * 20 + ["token-alice"] * 3
    results = await outcomes_of(front, tmp_path, policy, CountingAuthenticator(), tokens)
    assert results[:40] == ["unauthenticated"] * 40
    assert results[40:] == ["ok"] * 3  # the whole shared burst was still there


async def test_refused_tokens_are_limited_per_address_before_verification(front: str, tmp_path: Path) -> None:
    policy = limits(address=5)
    auth = CountingAuthenticator()
    results = await outcomes_of(front, tmp_path, policy, auth, [FORGED] * 20)
    assert results == ["unauthenticated"] * 5 + ["exhausted"] * 15
    assert auth.verifications == 5  # the other 15 cost no signature check


async def test_requests_without_a_token_spend_no_address_budget(front: str, tmp_path: Path) -> None:
    policy = limits(address=2)
    results = await outcomes_of(front, tmp_path, policy, CountingAuthenticator(), [None] * 20 + ["token-alice"])
    assert results == ["unauthenticated"] * 20 + ["ok"]  # a fresh login from the same address still works


async def test_a_known_caller_passes_its_addresss_closed_gate(front: str, tmp_path: Path) -> None:
    """Users behind one address (NAT, proxy) with a flooder: a token that authenticated before is
    held to its own budget, not to the address's refused-token budget."""
    policy = limits(address=3)
    tokens = ["token-alice"] + [FORGED] * 10 + ["token-alice"] * 3 + ["token-bob"]
    results = await outcomes_of(front, tmp_path, policy, CountingAuthenticator(), tokens)
    assert results[0] == "ok"
    assert results[1:11] == ["unauthenticated"] * 3 + ["exhausted"] * 7
    assert results[11:14] == ["ok"] * 3
    assert results[14] == "exhausted"  # bob's token is new, from an address that keeps failing


async def test_one_caller_cannot_spend_anothers_budget(front: str, tmp_path: Path) -> None:
    policy = limits(total=8, caller=3)
    tokens = ["token-alice"] * 10 + ["token-bob"] * 3
    auth = CountingAuthenticator()
    results = await outcomes_of(front, tmp_path, policy, auth, tokens)
    assert results[:10] == ["ok"] * 3 + ["exhausted"] * 7
    assert results[10:] == ["ok"] * 3  # alice's refusals did not spend the shared budget
    assert auth.verifications == 3 + 3  # a known caller over its budget is refused before verification


def test_address_keys_group_an_ipv6_host_and_unwrap_mapped_ipv4() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key(None) == address_key("") == "unknown"


class Peer:
    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:5123", "127.0.0.1"),
        ("ipv6:[::1]:5123", "::1"),
        ("ipv6:%5B::1%5D:5123", "::1"),
        ("unix:/s", "unix"),
    ],
)
def test_grpc_peer_address(peer: str, address: str) -> None:
    assert peer_address(Peer(peer)) == address


def test_memory_stays_bounded_under_many_addresses_and_tokens() -> None:
    policy = CallerLimits(Budget(1, 1), Budget(1, 1), Budget(1, 1), max_keys=50, clock=Clock())
    for i in range(5000):
        address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        policy.before_authentication(f"forged-{i}", address)
        policy.authentication_failed(address)
    assert len(policy.addresses) == 50
    known = KnownTokens(50, Clock())
    for i in range(5000):
        known.remember(f"token-{i}", f"user-{i}", 10)
    assert len(known) == 50
    assert known.subject("token-4999") == "user-4999"
    assert known.subject("token-0") is None


def test_a_known_token_is_forgotten_when_it_expires() -> None:
    clock = Clock(100.0)
    known = KnownTokens(10, clock)
    known.remember("token-alice", "alice", 200.0)
    assert known.subject("token-alice") == "alice"
    clock.now = 200.0
    assert known.subject("token-alice") is None
    assert len(known) == 0


def test_rate_limit_requires_authentication() -> None:
    with pytest.raises(ValueError, match="authenticator"):
        GrpcServer("movie", ServerOptions(instrumentation=False, rate_limit=limits()))
