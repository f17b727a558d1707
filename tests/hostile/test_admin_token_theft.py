"""A stolen admin token opens only the service it was rendered for, on the running local platform.

Every catalog service holds its own admin token (``secret/firedrill/<service>/admin``, rendered by
the vault agent to ``<state>/secrets/<service>/admin-token``). An attacker who read one service's
token file (a compromised hello, say) tries it on every other service's ops-port debugging
endpoints and on response's fault switch: every try is a 403, and nothing is switched. Without any
token the answer is a 401.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from services.common import catalog
from tests.conftest import RunningPlatform

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

SERVICES = catalog.service_names()
TIMEOUT_S = 10.0


def _call(
    url: str, method: str, token: str | None, body: dict[str, Any] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as answer:  # noqa: S310
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _ops(service: str, path: str) -> str:
    return f"http://127.0.0.1:{catalog.port(catalog.service(service).scrape_port)}{path}"


@pytest.fixture(scope="module")
def tokens(local_platform: RunningPlatform) -> dict[str, str]:
    state = local_platform.platform.state
    return {service: state.admin_token(service).read_text().strip() for service in SERVICES}


def test_every_service_was_rendered_a_distinct_token(tokens: dict[str, str]) -> None:
    assert all(len(token) >= 32 for token in tokens.values()), "a token is missing or short"
    assert len(set(tokens.values())) == len(SERVICES)


def test_a_token_opens_its_own_ops_port_and_no_other(tokens: dict[str, str]) -> None:
    refused_codes = set()
    for target in SERVICES:
        status, body = _call(_ops(target, "/debug/tasks"), "GET", None)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), target
        status, body = _call(_ops(target, "/debug/tasks"), "GET", tokens[target])
        assert status == 200, (target, body)
        for thief in SERVICES:
            if thief == target:
                continue
            for method, path in (("GET", "/debug/tasks"), ("POST", "/debug/heap/start")):
                status, body = _call(_ops(target, path), method, tokens[thief])
                assert status == 403, f"{thief}'s token on {target}'s {method} {path}: {status} {body}"
                refused_codes.add(body["error"]["code"])
    assert refused_codes == {"permission_denied"}


def test_no_other_service_token_switches_response_faults(
    local_platform: RunningPlatform, tokens: dict[str, str]
) -> None:
    # Through response's mTLS listener with the operator's certificate (a caller it accepts), so
    # the only thing left to refuse the call is the token.
    context = local_platform.endpoints.client_ssl()
    assert context is not None, "the local platform serves response over mTLS"
    faults = local_platform.url("response", "/admin/faults")
    fault = {"latency_ms": 900, "error_ratio": 1.0}
    assert _call(faults, "PUT", None, fault, context)[0] == 401
    for thief in SERVICES:
        if thief == "response":
            continue
        status, body = _call(faults, "PUT", tokens[thief], fault, context)
        assert (status, body["error"]["code"]) == (403, "permission_denied"), thief
        assert _call(faults, "DELETE", tokens[thief], None, context)[0] == 403, thief
    status, current = _call(faults, "GET", tokens["response"], None, context)
    assert status == 200
    assert (current["latency_ms"], current["error_ratio"]) == (0, 0.0)  # nothing was switched
