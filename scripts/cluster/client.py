"""A python-nomad client configured the way the nomad CLI is: NOMAD_ADDR, NOMAD_TOKEN, NOMAD_CACERT."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import nomad
import nomad.api.exceptions as nomad_errors
import requests

T = TypeVar("T")


class ClusterError(Exception):
    """The cluster refused or could not be reached; the message says what to do."""


def make_client(environ: Mapping[str, str] | None = None, *, timeout: int = 10) -> nomad.Nomad:
    env = os.environ if environ is None else environ
    address = env.get("NOMAD_ADDR", "").strip().rstrip("/")
    if not address:
        raise ClusterError("NOMAD_ADDR is not set: export the lines `terraform output -raw env` prints")
    if not address.startswith(("http://", "https://")):
        address = f"http://{address}"
    verify: bool | str = env.get("NOMAD_CACERT") or address.startswith("https://")
    cert: tuple[str, ...] = ()
    if env.get("NOMAD_CLIENT_CERT") and env.get("NOMAD_CLIENT_KEY"):
        cert = (env["NOMAD_CLIENT_CERT"], env["NOMAD_CLIENT_KEY"])
    return nomad.Nomad(
        address=address,
        token=env.get("NOMAD_TOKEN") or None,
        namespace=env.get("NOMAD_NAMESPACE") or None,
        region=env.get("NOMAD_REGION") or None,
        verify=verify,
        cert=cert,
        timeout=timeout,
    )


def explain(exc: BaseException) -> str:
    """A one-line reason from a python-nomad or requests error."""
    response = getattr(exc, "nomad_resp", None)
    if isinstance(response, requests.Response):
        body = response.text.strip().replace("\n", " ")
        hint = ""
        if response.status_code == 403:
            hint = " (set NOMAD_TOKEN to a token allowed to do this)"
        return f"HTTP {response.status_code} {response.request.method} {response.url}: {body[:500]}{hint}"
    if response is not None:
        return str(response)
    return str(exc) or type(exc).__name__


def nomad_call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one API call; failures become ClusterError naming what was attempted."""
    try:
        return fn(*args, **kwargs)
    except (nomad_errors.BaseNomadException, requests.RequestException) as exc:
        raise ClusterError(f"{what} failed: {explain(exc)}") from exc
