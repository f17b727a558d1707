"""The committed OpenAPI descriptions (docs/api/) match the apps, and schemathesis finds no server error.

Each app runs in this process on a loopback port, on an event loop in a background thread:
incidents (temporary data directory), response (an admin token, a small leak cap) and the movie
stack's HTTP front (the four movie services in-process, a real token). For every operation,
schemathesis generates a bounded number of requests, valid (positive) and invalid (negative),
and every answer must be no 5xx, a status the description lists, of its content type and of its
schema.

Two adjustments keep the run bounded without hiding anything: a valid ``duration`` for /slow and
/cpu is cut to under 20 ms (the bounds themselves are still sent and checked), and response's
fault switch is reset after every request, so an error ratio set by a generated PUT /admin/faults
never turns the next /response into the 500 it was asked for.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import schemathesis
import yaml
from aiohttp import web
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scripts.movie.stack import MovieStack
from services.common.config import ServiceConfig
from services.common.grpc_auth import bearer_metadata
from services.genproto import movie_pb2, movie_pb2_grpc
from services.incidents.app import create_app as create_incidents_app
from services.incidents.config import IncidentsConfig
from services.response import views as response_views
from services.response.app import create_app as create_response_app
from services.response.config import ResponseConfig
from tests.conftest import REPO

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

API_DIR = REPO / "docs" / "api"
EXAMPLES_PER_OPERATION = 40  # per generation mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ADMIN_TOKEN = "hostile-suite-admin-token"  # a throwaway token for an in-process app
KNOWN_MOVIE = "tt0133093"
SHORT_MS = 20

T = TypeVar("T")


class Loop:
    """An event loop in a background thread; the synchronous tests submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Served:
    app: web.Application
    base_url: str
    headers: dict[str, str]
    after_each: Callable[[], None] = lambda: None


class Apps:
    def __init__(self) -> None:
        self.loop = Loop()
        self.tmp = tempfile.TemporaryDirectory(prefix="fd-openapi-")
        root = Path(self.tmp.name)
        self.runners: list[web.AppRunner] = []
        environ = {"FIREDRILL_STATE_DIR": str(root), "FIREDRILL_DATA_DIR": str(root / "incidents")}
        incidents = create_incidents_app(IncidentsConfig.from_env(environ), metrics_registry=CollectorRegistry())
        response_config = ResponseConfig(
            service=ServiceConfig.from_env("response", {"FIREDRILL_STATE_DIR": str(root)}),
            admin_token_file=None,
            leak_cap_bytes=8 * 1024 * 1024,
        )
        response = create_response_app(response_config, admin_token=ADMIN_TOKEN, metrics_registry=CollectorRegistry())
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        unlimited = {
            f"FIREDRILL_RATE_LIMIT_{kind}{part}": "1000000"
            for kind in ("", "CALLER_", "ANONYMOUS_")
            for part in ("RPS", "BURST")
        }
        self.stack = MovieStack(root / "movie", env={"movie": unlimited}, hasher=cheap, instrumentation=False)
        self.loop.run(self.stack.start())
        token = self.loop.run(self.stack.token())
        self.loop.run(self._put_known_movie(token))
        movie_front = self.stack.running["movie"].app.http
        self.served = {
            "incidents": Served(incidents, self.loop.run(self._serve(incidents)), {}),
            "response": Served(
                response,
                self.loop.run(self._serve(response)),
                {"Authorization": f"Bearer {ADMIN_TOKEN}"},
                after_each=lambda: self.loop.run(self._reset_faults(response)),
            ),
            "movie": Served(movie_front, self.stack.http_url(), {"Authorization": f"Bearer {token}"}),
        }

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def _put_known_movie(self, token: str) -> None:
        stub_class: Any = movie_pb2_grpc.MetadataServiceStub
        metadata = movie_pb2.Metadata(id=KNOWN_MOVIE, title="The Matrix", description="red pill", director="Wachowskis")
        async with self.stack.channel("metadata") as channel:
            await stub_class(channel).PutMetadata(
                movie_pb2.PutMetadataRequest(metadata=metadata), metadata=bearer_metadata(token), timeout=10
            )

    @staticmethod
    async def _reset_faults(app: web.Application) -> None:
        app[response_views.FAULTS_KEY].reset()  # no latency, no error ratio, leaked memory freed

    def close(self) -> None:
        async def shutdown() -> None:
            for runner in self.runners:
                await runner.cleanup()
            await self.stack.close()

        self.loop.run(shutdown())
        self.loop.close()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def apps() -> Iterator[Apps]:
    running = Apps()
    yield running
    running.close()


def described_routes(service: str) -> set[tuple[str, str]]:
    document = yaml.safe_load((API_DIR / f"{service}.yaml").read_text())
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"  # aiohttp adds HEAD to every GET
    }


SERVICES = ["incidents", "movie", "response"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_description_lists_exactly_the_routes_of_the_app(apps: Apps, service: str) -> None:
    assert described_routes(service) == app_routes(apps.served[service].app)


def operations(service: str) -> list[Any]:
    schema = schemathesis.openapi.from_path(str(API_DIR / f"{service}.yaml"))
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the description itself is broken: say where
        found.append(result.ok())
    return found


def cases(service: str) -> list[tuple[str, str, schemathesis.GenerationMode]]:
    """(service, operation, mode): negative data only where the operation takes input to get wrong."""
    found = []
    for operation in operations(service):
        found.append((service, operation.label, schemathesis.GenerationMode.POSITIVE))
        if operation.query or operation.path_parameters or operation.body:
            found.append((service, operation.label, schemathesis.GenerationMode.NEGATIVE))
    return found


def short_durations(case: Any) -> Any:
    """/slow and /cpu: a duration the server would accept (or none: the default) is cut below SHORT_MS.

    Values the server must refuse are sent as generated.
    """
    if case.operation.path not in {"/slow", "/cpu"}:
        return case
    query = case.query if case.query is not None else {}
    raw = query.get("duration")
    try:
        value = None if raw is None or raw == "" else int(str(raw))
    except ValueError:
        return case
    if value is None or value >= 0:
        query["duration"] = (value or 0) % SHORT_MS
        case.query = query
    return case


ALL_CASES = [case for service in SERVICES for case in cases(service)]


@pytest.mark.parametrize(
    ("service", "label", "mode"),
    ALL_CASES,
    ids=[f"{mode.value}-{service}:{label}" for service, label, mode in ALL_CASES],
)
def test_schemathesis_finds_no_server_error(
    apps: Apps, service: str, label: str, mode: schemathesis.GenerationMode
) -> None:
    (operation,) = [op for op in operations(service) if op.label == label]
    served = apps.served[service]
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode).map(short_durations))
    def check(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(base_url=served.base_url, headers=served.headers, checks=CHECKS, timeout=30)
        finally:
            served.after_each()

    check()
    print(f"{mode.value} {service} {label}: {sent} requests")
    assert sent > 0


def test_the_known_movie_is_served_as_described(apps: Apps) -> None:
    """The generated ids are almost never a stored movie: one request checks the 200s' schemas."""
    served = apps.served["movie"]
    schema = schemathesis.openapi.from_path(str(API_DIR / "movie.yaml"))
    details = schema["/movies/{movie_id}"]["GET"].Case(path_parameters={"movie_id": KNOWN_MOVIE})
    answer = details.call_and_validate(base_url=served.base_url, headers=served.headers, checks=CHECKS)
    assert answer.status_code == 200
    rate = schema["/movies/{movie_id}/ratings"]["PUT"].Case(
        path_parameters={"movie_id": KNOWN_MOVIE}, body={"rating": 5}, media_type="application/json"
    )
    answer = rate.call_and_validate(base_url=served.base_url, headers=served.headers, checks=CHECKS)
    assert answer.status_code == 200
