"""gRPC clients: channels with Firedrill's interceptors, discovery, deadlines and retries.

``make_channel`` is the one place a channel is created (TLS hook: ``channel_credentials``; None
means plaintext; ``channel_options`` carries e.g. the pinned server name of
``grpc_credentials.channel_options``). ``DiscoveredChannels`` picks a healthy instance of a
service through the registry and keeps one channel per address; ``reconfigure`` swaps in new
options (a renewed client certificate: Python gRPC cannot change a channel's credentials in
place), so new calls get fresh channels while the old ones finish their calls and close.
``call_with_retry`` runs an idempotent call within an absolute deadline: at most ``attempts``
tries, only on UNAVAILABLE or DEADLINE_EXCEEDED, exponential backoff with full jitter, never
sleeping past the deadline; failures come out as domain errors (``services.common.errors``,
by ``grpc_status.error_for_status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import grpc.aio
from opentelemetry.sdk.trace import TracerProvider

from services.common.discovery.base import Instance, NoHealthyInstance, Registry
from services.common.discovery.cache import InstanceCache
from services.common.errors import DeadlineExceeded, DomainError, Unavailable
from services.common.grpc_handlers import is_application_call
from services.common.grpc_metrics import GrpcClientMetrics, client_metrics_interceptors
from services.common.grpc_status import error_for_status

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# How long a replaced channel may finish its in-flight calls (each is bounded by its own deadline).
RETIRE_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class ClientOptions:
    instrumentation: bool = True
    tracer_provider: TracerProvider | None = None
    metrics: GrpcClientMetrics | None = None
    channel_credentials: grpc.ChannelCredentials | None = None
    # Extra channel arguments, e.g. ``grpc_credentials.channel_options(service_dns_name(upstream))``.
    channel_options: tuple[tuple[str, Any], ...] = ()


def make_channel(target: str, options: ClientOptions | None = None) -> grpc.aio.Channel:
    """A channel to ``target`` (host:port) with tracing and client metrics interceptors."""
    opts = options or ClientOptions()
    interceptors: list[Any] = []
    if opts.instrumentation:
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors.extend(
            aio_client_interceptors(  # type: ignore[no-untyped-call]
                tracer_provider=opts.tracer_provider, filter_=is_application_call
            )
        )
    if opts.metrics is not None:
        interceptors.extend(client_metrics_interceptors(opts.metrics))
    channel_options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Reconnect quickly after an upstream restarts (defaults back off to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        ("grpc.enable_retries", 0),  # retries are ours, bounded by the caller's deadline
        *opts.channel_options,
    ]
    if opts.channel_credentials is None:
        return grpc.aio.insecure_channel(target, options=channel_options, interceptors=interceptors or None)
    return grpc.aio.secure_channel(
        target, opts.channel_credentials, options=channel_options, interceptors=interceptors or None
    )


class DiscoveredChannels:
    """Stubs over channels to the healthy instances of one service, found through the registry.

    ``stub_class`` is the generated stub (``movie_pb2_grpc.RatingServiceStub``); one channel and
    one stub per instance address are kept and reused.
    """

    def __init__(
        self, service: str, registry: Registry, options: ClientOptions, stub_class: Any, *, cache_age_s: float = 1.0
    ) -> None:
        self.service = service
        self._instances = InstanceCache(registry, max_age_s=cache_age_s)
        self._options = options
        self._stub_class = stub_class
        self._channels: dict[str, tuple[grpc.aio.Channel, Any]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._retired: list[grpc.aio.Channel] = []
        self.generation = 0

    @property
    def options(self) -> ClientOptions:
        return self._options

    async def pick(self, avoid: Instance | None = None) -> tuple[Instance, Any]:
        """A healthy instance and a stub to it (UNAVAILABLE when there is none)."""
        try:
            instance = await self._instances.pick(self.service, avoid=avoid)
        except NoHealthyInstance:
            raise Unavailable(f"{self.service} has no healthy instance") from None
        entry = self._channels.get(instance.address)
        if entry is None:
            channel = make_channel(instance.address, self._options)
            entry = (channel, self._stub_class(channel))
            self._channels[instance.address] = entry
        return instance, entry[1]

    def forget(self) -> None:
        """Ask the registry again on the next call (an instance just failed)."""
        self._instances.forget(self.service)

    def reconfigure(self, options: ClientOptions, *, grace_s: float = RETIRE_GRACE_S) -> None:
        """Use ``options`` for every new channel; current channels finish their calls, then close.

        Synchronous, so it can run in a ``TlsMaterial.on_reload`` callback: the next ``pick``
        dials with the new options; calls already running keep their channel for up to
        ``grace_s`` (their own deadlines are shorter) before it is closed.
        """
        self._options = options
        self.generation += 1
        old = [channel for channel, _stub in self._channels.values()]
        self._channels = {}
        if not old:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._retired.extend(old)  # no loop here: closed by ``close``
            return
        task = loop.create_task(self._close_all(old, grace_s))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _close_all(channels: list[grpc.aio.Channel], grace_s: float | None) -> None:
        results = await asyncio.gather(*(channel.close(grace_s) for channel in channels), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("closing a replaced channel failed", extra={"error": repr(result)[:200]})

    async def close(self) -> None:
        entries, self._channels = list(self._channels.values()), {}
        retired, self._retired = self._retired, []
        await self._close_all([channel for channel, _stub in entries] + retired, None)
        for task in list(self._retiring):
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_backoff_s: float = 0.025
    max_backoff_s: float = 0.25
    # Each attempt gets at most this long (a hung instance must leave time for another try).
    attempt_timeout_s: float = 1.0

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return random.uniform(0.0, min(self.max_backoff_s, self.base_backoff_s * (2**attempt)))


# attempt(stub, seconds_left_for_this_attempt) -> response
Attempt = Callable[[Any, float], Awaitable[T]]


async def call_with_retry(
    channels: DiscoveredChannels, attempt: Attempt[T], *, deadline: float, policy: RetryPolicy
) -> T:
    """Run ``attempt(stub, budget_s)`` until it succeeds, the attempts run out, or ``deadline``.

    ``deadline`` is absolute, in ``loop.time()`` seconds. Only UNAVAILABLE and DEADLINE_EXCEEDED
    are retried (the call must be idempotent); any other status is final.
    """
    loop = asyncio.get_running_loop()
    previous: Instance | None = None
    last: DomainError = DeadlineExceeded(f"no time left to call {channels.service}")
    for number in range(policy.attempts):
        remaining = deadline - loop.time()
        if remaining <= 0.001:
            break
        try:
            instance, stub = await channels.pick(avoid=previous)
        except Unavailable as exc:
            last = exc
        else:
            previous = instance
            try:
                return await attempt(stub, min(remaining, policy.attempt_timeout_s))
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                last = error_for_status(code, f"{channels.service}: {exc.details() or code.name}")
                if code not in RETRYABLE:
                    raise last from None
                if code == grpc.StatusCode.UNAVAILABLE:
                    channels.forget()
        if number + 1 < policy.attempts:
            pause = min(policy.backoff_s(number), max(0.0, deadline - loop.time()))
            await asyncio.sleep(pause)
    if loop.time() >= deadline - 0.001 and not isinstance(last, Unavailable):
        raise DeadlineExceeded(f"{channels.service} did not answer in time ({last.message})")
    raise last
