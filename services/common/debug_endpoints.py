"""Debugging endpoints on a service's ops port (seed 001's pprof, the Python way; docs/debugging.md).

- ``POST /debug/heap/start?frames=N`` / ``POST /debug/heap/stop``: switch tracemalloc on or off.
  It is off by default because tracing every allocation costs CPU on every request.
- ``GET /debug/heap?top=N``: the top allocation sites (file:line, size, count) since tracing began.
- ``GET /debug/tasks``: every asyncio task, its coroutine, and where it is suspended.
- ``GET /debug/profile?seconds=N&top=M[&format=text]``: a sampled CPU profile of the whole process
  (``services.common.cpu_sampler``); one at a time per process, a second is refused with 409.

The ops port is plain HTTP and Prometheus reaches it for /metrics, so every debug call needs the
service's OWN admin token (``secret/firedrill/<service>/admin``, rendered from Vault to
``FIREDRILL_ADMIN_TOKEN_FILE``; ``services.common.admin_token``) as ``Authorization: Bearer``: none
is 401, a wrong one -- another service's included -- 403, and a service that was given no token
answers 403 to every debug call.
"""

from __future__ import annotations

import asyncio
import hmac
import linecache
import threading
import time
import tracemalloc
from typing import Any

from aiohttp import web

from services.common.cpu_sampler import sample, short_path
from services.common.errors import Aborted, BadRequest, FailedPrecondition, PermissionDenied, Unauthorized
from services.common.params import bounded_int

DEBUG_TOKEN_KEY = web.AppKey("debug_admin_token", str)

MAX_PROFILE_S = 30
DEFAULT_PROFILE_S = 5
MAX_TOP = 100
DEFAULT_TOP = 20
MAX_TRACE_FRAMES = 25
MAX_TASK_FRAMES = 20
PROFILE_INTERVAL_S = 0.005

# One CPU profile at a time in a process, whichever ops app asks (sampling is process-wide).
_PROFILE_RUNNING = threading.Lock()
_HEAP_STATE: dict[str, float] = {}
# tracemalloc's own bookkeeping and the import system are noise in a leak hunt.
_HEAP_NOISE = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def require_admin(request: web.Request) -> None:
    expected = request.app.get(DEBUG_TOKEN_KEY)
    if not expected:
        raise PermissionDenied(
            "debugging endpoints are disabled: this service was given no admin token (FIREDRILL_ADMIN_TOKEN_FILE)"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("debugging endpoints need the admin token: Authorization: Bearer <token>")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise PermissionDenied("wrong admin token for the debugging endpoints")


async def heap_start(request: web.Request) -> web.Response:
    require_admin(request)
    frames = bounded_int(request.query, "frames", default=1, minimum=1, maximum=MAX_TRACE_FRAMES)
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start(frames)
        _HEAP_STATE["since"] = time.time()
    return web.json_response({"tracing": True, "already_tracing": already, "frames": tracemalloc.get_traceback_limit()})


async def heap_stop(request: web.Request) -> web.Response:
    require_admin(request)
    was = tracemalloc.is_tracing()
    tracemalloc.stop()  # also frees the traces
    _HEAP_STATE.pop("since", None)
    return web.json_response({"tracing": False, "was_tracing": was})


def heap_top(count: int) -> dict[str, Any]:
    """The ``count`` allocation sites holding the most memory traced since tracing started."""
    snapshot = tracemalloc.take_snapshot().filter_traces(_HEAP_NOISE)
    current, peak = tracemalloc.get_traced_memory()
    top = []
    for stat in snapshot.statistics("lineno")[:count]:
        frame = stat.traceback[0]
        top.append(
            {
                "file": short_path(frame.filename),
                "line": frame.lineno,
                "size_bytes": stat.size,
                "count": stat.count,
                "code": linecache.getline(frame.filename, frame.lineno).strip(),
            }
        )
    since = _HEAP_STATE.get("since")
    return {
        "tracing_for_s": round(time.time() - since, 1) if since else None,
        "traced_bytes": current,
        "traced_peak_bytes": peak,
        "top": top,
    }


async def heap_snapshot(request: web.Request) -> web.Response:
    require_admin(request)
    count = bounded_int(request.query, "top", default=DEFAULT_TOP, minimum=1, maximum=MAX_TOP)
    if not tracemalloc.is_tracing():
        raise FailedPrecondition(
            "heap tracing is off (it costs CPU, so it is off by default): POST /debug/heap/start first"
        )
    # Taking a snapshot copies every trace: off the event loop, so requests keep being served.
    return web.json_response(await asyncio.to_thread(heap_top, count))


def _task_entry(task: asyncio.Task[Any]) -> dict[str, Any]:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or type(coro).__name__
    stack = [
        f"{short_path(f.f_code.co_filename)}:{f.f_lineno} in {f.f_code.co_name}"
        for f in task.get_stack(limit=MAX_TASK_FRAMES)
    ]
    state = "cancelled" if task.cancelled() else "done" if task.done() else "pending"
    return {"name": task.get_name(), "coroutine": name, "state": state, "suspended_at": stack}


async def tasks_dump(request: web.Request) -> web.Response:
    require_admin(request)
    me = asyncio.current_task()
    tasks = sorted((t for t in asyncio.all_tasks() if t is not me), key=lambda t: t.get_name())
    return web.json_response({"count": len(tasks), "tasks": [_task_entry(t) for t in tasks]})


async def cpu_profile(request: web.Request) -> web.Response:
    require_admin(request)
    seconds = bounded_int(
        request.query, "seconds", default=DEFAULT_PROFILE_S, minimum=1, maximum=MAX_PROFILE_S, unit="s"
    )
    count = bounded_int(request.query, "top", default=DEFAULT_TOP, minimum=1, maximum=MAX_TOP)
    text = request.query.get("format", "json")
    if text not in {"json", "text"}:
        raise BadRequest("format must be json or text", parameter="format")
    if not _PROFILE_RUNNING.acquire(blocking=False):
        raise Aborted("a CPU profile is already running in this process; try again when it has finished")
    try:
        profile = await asyncio.to_thread(sample, seconds, PROFILE_INTERVAL_S)
    finally:
        _PROFILE_RUNNING.release()
    if text == "text":
        return web.Response(text=profile.as_text(count), content_type="text/plain")
    return web.json_response(profile.as_dict(count))


def add_debug_endpoints(app: web.Application) -> None:
    """The /debug routes; they answer only once ``DEBUG_TOKEN_KEY`` is set on the app."""
    app.router.add_post("/debug/heap/start", heap_start)
    app.router.add_post("/debug/heap/stop", heap_stop)
    app.router.add_get("/debug/heap", heap_snapshot)
    app.router.add_get("/debug/tasks", tasks_dump)
    app.router.add_get("/debug/profile", cpu_profile)
