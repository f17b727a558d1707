"""Calls to another service found through discovery: a deadline, bounded retries, clear errors.

Only idempotent GETs are retried. The whole call, retries included, fits in the deadline, so a
caller answers 503/504 in time instead of hanging when its upstream is gone.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
from opentelemetry import trace
from yarl import URL

from services.common.discovery.base import Instance, NoHealthyInstance
from services.common.discovery.cache import InstanceCache
from services.common.errors import UpstreamTimeout, UpstreamUnavailable
from services.common.http_tracing import outgoing_call
from services.common.metrics import HttpClientMetrics

BACKOFF_BASE_S = 0.02
INSTANCE_POLL_S = 0.1
MAX_CACHED_URLS = 1024  # instances come and go; the cache starts afresh rather than grow


class UpstreamClient:
    def __init__(
        self,
        service: str,
        instances: InstanceCache,
        session: aiohttp.ClientSession,
        *,
        tracer: trace.Tracer | None = None,
        deadline_s: float,
        attempts: int,
        metrics: HttpClientMetrics | None = None,
        scheme: str = "http",
    ) -> None:
        self._service = service
        self._instances = instances
        self._session = session
        self._tracer = tracer
        self._deadline_s = deadline_s
        self._attempts = attempts
        self._metrics = metrics
        self._scheme = scheme
        # Parsed once per instance and path: aiohttp would parse the same URL string on every call.
        self._urls: dict[tuple[str, str], URL] = {}

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.count(self._service, outcome)

    def _url(self, instance: Instance, path: str) -> URL:
        key = (instance.address, path)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            url = self._urls[key] = URL(f"{self._scheme}://{instance.address}{path}")
        return url

    async def _wait_for_instance(self, previous: Instance | None, deadline: float) -> Instance:
        """A healthy instance; while the deadline allows, wait for one to come back.

        A restart leaves a service without instances for a second or two; callers with time
        left ride it out instead of failing their users.
        """
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await self._instances.pick(self._service, avoid=previous)
            except NoHealthyInstance:
                if loop.time() + INSTANCE_POLL_S >= deadline:
                    self._count("no_instance")
                    raise UpstreamUnavailable(
                        f"{self._service} has no healthy instance", upstream=self._service
                    ) from None
                self._instances.forget(self._service)
                await asyncio.sleep(INSTANCE_POLL_S)

    async def get_json(self, path: str) -> tuple[Instance, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        last_problem = "no attempt made"
        timed_out = False
        previous: Instance | None = None
        for attempt in range(self._attempts):
            remaining = deadline - loop.time()
            if remaining <= 0:
                timed_out = True
                break
            instance = await self._wait_for_instance(previous, deadline)
            previous = instance
            url = self._url(instance, path)
            try:
                async with (
                    outgoing_call(self._tracer, "GET", url) as call,
                    self._session.get(
                        url, headers=call.headers, timeout=aiohttp.ClientTimeout(total=remaining)
                    ) as resp,
                ):
                    call.answered(resp.status)
                    if resp.status < 400:
                        body = await resp.json(content_type=None)
                        self._count("ok")
                        return instance, body if isinstance(body, dict) else {"value": body}
                    last_problem = f"{instance.instance_id} answered {resp.status}"
                    self._count(f"http_{resp.status // 100}xx")
                    if resp.status < 500:
                        break  # the request itself is wrong; retrying will not help
            except TimeoutError:
                timed_out = True
                last_problem = f"{instance.instance_id} did not answer in time"
                self._count("timeout")
            except aiohttp.ClientError as exc:
                last_problem = f"{instance.instance_id}: {exc.__class__.__name__}"
                self._count("connection_error")
                self._instances.forget(self._service)
            if attempt + 1 < self._attempts:
                backoff = BACKOFF_BASE_S * (2**attempt) * random.uniform(0.5, 1.5)
                await asyncio.sleep(max(0.0, min(backoff, deadline - loop.time())))
        if timed_out and loop.time() >= deadline:
            raise UpstreamTimeout(
                f"{self._service} did not answer within {self._deadline_s:.2f}s",
                upstream=self._service,
                last_problem=last_problem,
            )
        raise UpstreamUnavailable(f"{self._service} is unavailable", upstream=self._service, last_problem=last_problem)
