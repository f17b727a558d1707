"""One admin call over HTTP(S) with urllib, answered as an ``AdminAnswer`` (used by the local platform)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from scripts.deploy_target.interface import ADMIN_PORTS, AdminAnswer, PlatformError


def check_port(port: str) -> None:
    if port not in ADMIN_PORTS:
        raise PlatformError(f"port must be one of {', '.join(ADMIN_PORTS)}, got {port!r}")


def parse_body(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def admin_request(
    base_url: str,
    method: str,
    path: str,
    token: str,
    *,
    body: dict[str, Any] | None = None,
    timeout_s: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> AdminAnswer:
    """``method path`` on ``base_url`` with the admin token; an HTTP refusal is an answer, not an error."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)  # noqa: S310
    instance = base_url.split("://", 1)[-1]
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=ssl_context) as answer:  # noqa: S310
            return AdminAnswer(instance, answer.status, parse_body(answer.read()))
    except urllib.error.HTTPError as exc:
        return AdminAnswer(instance, exc.code, parse_body(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        raise PlatformError(f"{method} {base_url}{path} failed: {exc}") from exc
