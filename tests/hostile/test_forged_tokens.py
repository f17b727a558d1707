"""Forged and misused tokens against both live movie fronts (gRPC over mTLS, and the plain HTTP/JSON front).

Each forgery is refused with UNAUTHENTICATED (gRPC) or 401 with a JSON error that does not echo
the token (HTTP). The controls prove the fronts can say yes: the token auth issues, and one the
test signs itself with the platform's real key and correct claims, are both accepted (the movie
does not exist, so the answer is NOT_FOUND / 404, past authentication).

The verifier's reasons are unit-tested in tests/unit/test_auth_tokens.py; here the question is
whether the platform, as deployed, lets any of them through on either front.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import grpc
import grpc.aio
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common.auth_tokens import ALGORITHM, DEFAULT_AUDIENCE, DEFAULT_ISSUER, MAX_TOKEN_CHARS, KeyRing
from services.common.waiting import wait_until_async
from services.genproto import movie_pb2, movie_pb2_grpc
from tests.conftest import RunningPlatform
from tests.hostile.platform_access import TIMEOUT_S, demo_token, operator_channel, signing_ring, verification_ring

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

UNKNOWN_MOVIE = "tt-hostile-never-created"


T = TypeVar("T")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: object) -> str:
    return b64(json.dumps(value).encode())


class Forge:
    """Builds tokens against the platform's real keys and settings."""

    def __init__(self, signing: KeyRing, verification: KeyRing, genuine: str) -> None:
        self.kid, self.key = signing.signing_key()
        self.public_pem = verification.verification_keys[self.kid].public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.genuine = genuine

    @staticmethod
    def claims(**overrides: object) -> dict[str, object]:
        now = int(time.time())
        base: dict[str, object] = {
            "iss": DEFAULT_ISSUER,
            "aud": DEFAULT_AUDIENCE,
            "sub": "demo",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def sign(self, payload: dict[str, object], key: Any = None, alg: str = ALGORITHM, kid: str | None = "") -> str:
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(payload, key if key is not None else self.key, algorithm=alg, headers=headers)

    def unsigned(self, alg: str) -> str:
        return f"{b64json({'alg': alg, 'typ': 'JWT', 'kid': self.kid})}.{b64json(self.claims())}."

    def hs256_with_public_key(self) -> str:
        signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': self.kid})}.{b64json(self.claims())}"
        signature = hmac.new(self.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"

    def tampered(self) -> str:
        header, _, signature = self.genuine.split(".")
        return f"{header}.{b64json(self.claims(sub='admin'))}.{signature}"

    def signature_stripped(self) -> str:
        return self.genuine.rsplit(".", 1)[0] + "."


def _past() -> int:
    return int(time.time()) - 3600


def _future() -> int:
    return int(time.time()) + 3600


# name -> how to build the Authorization header value from a Forge (None: no header at all)
ATTACKS: dict[str, Callable[[Forge], str | None]] = {
    "no_header": lambda f: None,
    "empty_bearer": lambda f: "Bearer ",
    "basic_scheme": lambda f: "Basic " + b64(b"demo:demo"),
    "token_without_scheme": lambda f: f.genuine,
    "garbage": lambda f: "Bearer garbage",
    "two_segments": lambda f: "Bearer " + ".".join(f.genuine.split(".")[:2]),
    "four_segments": lambda f: f"Bearer {f.genuine}.x",
    "non_ascii": lambda f: "Bearer é.é.é",
    "oversized": lambda f: "Bearer " + f.sign(f.claims(pad="x" * MAX_TOKEN_CHARS)),
    "alg_none": lambda f: "Bearer " + f.unsigned("none"),
    "alg_None_capitalised": lambda f: "Bearer " + f.unsigned("None"),
    "signature_stripped": lambda f: "Bearer " + f.signature_stripped(),
    "hs256_public_key_as_secret": lambda f: "Bearer " + f.hs256_with_public_key(),
    "es256_own_key": lambda f: "Bearer " + f.sign(f.claims(), ec.generate_private_key(ec.SECP256R1()), "ES256"),
    "other_ed25519_key_same_kid": lambda f: "Bearer " + f.sign(f.claims(), Ed25519PrivateKey.generate()),
    "tampered_payload": lambda f: "Bearer " + f.tampered(),
    "unknown_kid": lambda f: "Bearer " + f.sign(f.claims(), kid="ed25519-0000000000000000"),
    "no_kid": lambda f: "Bearer " + f.sign(f.claims(), kid=None),
    "expired": lambda f: "Bearer " + f.sign(f.claims(iat=_past() - 60, nbf=_past() - 60, exp=_past())),
    "not_yet_valid": lambda f: "Bearer " + f.sign(f.claims(nbf=_future(), exp=_future() + 60)),
    "issued_in_the_future": lambda f: "Bearer " + f.sign(f.claims(iat=_future(), exp=_future() + 60)),
    "wrong_issuer": lambda f: "Bearer " + f.sign(f.claims(iss="evil-auth")),
    "wrong_audience": lambda f: "Bearer " + f.sign(f.claims(aud="another-app")),
    "audience_list": lambda f: "Bearer " + f.sign(f.claims(aud=[DEFAULT_AUDIENCE, "another-app"])),
    "missing_exp": lambda f: "Bearer " + f.sign(f.claims(exp=None)),
    "missing_sub": lambda f: "Bearer " + f.sign(f.claims(sub=None)),
    "empty_sub": lambda f: "Bearer " + f.sign(f.claims(sub="")),
    "non_string_sub": lambda f: "Bearer " + f.sign(f.claims(sub=12345)),
}


# gRPC metadata is ASCII: the client library refuses to send this one, so it only reaches the HTTP front.
HTTP_ONLY = frozenset({"non_ascii"})


@pytest.fixture(scope="module")
def forge(local_platform: RunningPlatform) -> Forge:
    genuine = asyncio.run(demo_token(local_platform))
    return Forge(signing_ring(local_platform), verification_ring(local_platform), genuine)


def grpc_metadata(header: str | None) -> tuple[tuple[str, str], ...]:
    return () if header is None else (("authorization", header),)


async def past_the_address_budget(call: Callable[[], Awaitable[T]], throttled: Callable[[T], bool]) -> T:
    """The answer once the verifier has judged the token: every refused token spends this address's
    budget (2/s by default), so a long list of forgeries is throttled with 429 / RESOURCE_EXHAUSTED
    before it reaches the verifier; wait for the budget instead of counting that as a refusal."""

    async def judged() -> T | None:
        answer = await call()
        return None if throttled(answer) else answer

    return await wait_until_async(judged, timeout_s=30, interval_s=0.25, what="an answer not throttled")


async def grpc_details(platform: RunningPlatform, header: str | None) -> grpc.StatusCode:
    return await past_the_address_budget(
        lambda: _grpc_details(platform, header), lambda code: code == grpc.StatusCode.RESOURCE_EXHAUSTED
    )


async def http_details(platform: RunningPlatform, header: str | None) -> tuple[int, str]:
    return await past_the_address_budget(lambda: _http_details(platform, header), lambda answer: answer[0] == 429)


async def _grpc_details(platform: RunningPlatform, header: str | None) -> grpc.StatusCode:
    stub_class: Any = movie_pb2_grpc.MovieServiceStub
    async with operator_channel(platform, "movie") as channel:
        try:
            await stub_class(channel).GetMovieDetails(
                movie_pb2.GetMovieDetailsRequest(movie_id=UNKNOWN_MOVIE),
                metadata=grpc_metadata(header),
                timeout=TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def _http_details(platform: RunningPlatform, header: str | None) -> tuple[int, str]:
    headers = {} if header is None else {"Authorization": header}
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            platform.url("movie", f"/movies/{UNKNOWN_MOVIE}"),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        ) as answer,
    ):
        return answer.status, await answer.text()


async def test_the_controls_are_accepted_on_both_fronts(local_platform: RunningPlatform, forge: Forge) -> None:
    for token in (forge.genuine, forge.sign(forge.claims())):
        assert await grpc_details(local_platform, f"Bearer {token}") == grpc.StatusCode.NOT_FOUND
        status, body = await http_details(local_platform, f"Bearer {token}")
        assert status == 404, body


@pytest.mark.parametrize("attack", sorted(set(ATTACKS) - HTTP_ONLY))
async def test_grpc_front_refuses(local_platform: RunningPlatform, forge: Forge, attack: str) -> None:
    assert await grpc_details(local_platform, ATTACKS[attack](forge)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_http_front_refuses(local_platform: RunningPlatform, forge: Forge, attack: str) -> None:
    header = ATTACKS[attack](forge)
    status, body = await http_details(local_platform, header)
    assert status == 401, body
    error = json.loads(body)["error"]
    assert error["code"] == "unauthenticated", error
    if header is not None:
        token = header.partition(" ")[2]
        assert len(token) < 16 or token not in body, "the refusal must not echo the token"
