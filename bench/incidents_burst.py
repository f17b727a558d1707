"""A burst of Alertmanager notifications, 30 % of them duplicates, against a real incident receiver.

Starts ``python -m services.incidents`` as a subprocess on a free loopback port with its own
temporary data directory, sends the notifications over several concurrent lanes (one lane sends
a group's notifications in order, as Alertmanager does; duplicates are re-sends of earlier
notifications, as Alertmanager's retries and repeat_interval produce), then checks the store
against what was sent: incidents and alerts stored, duplicates created (must be 0), lost (must
be 0), and that every incident's JSON file matches the API.

    python -m bench.incidents_burst --notifications 10000 --duplicates 0.3

The pieces (receiver process, workload, sender, verification) are reused by
tests/hostile/test_incidents_crash.py, which also kills the receiver mid-burst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import proc_stats
from scripts.processes import ServiceProcess
from services.common.waiting import wait_until
from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification

RESULTS = Path(__file__).resolve().parent / "results" / "incidents_burst.json"
T0 = 1_714_564_800 * NS_PER_S
MAX_NOTIFICATIONS = 100_000


class ReceiverProcess:
    """The incident receiver as a real process on loopback, with its own data directory."""

    def __init__(self, state_dir: Path, *, port: int | None = None, extra_env: dict[str, str] | None = None) -> None:
        # No enrichment unless asked for in extra_env: the standard environment sets no Prometheus URL.
        self.service = ServiceProcess("incidents", state_dir, port=port, env=extra_env)
        self.state_dir = state_dir
        self.data_dir = self.service.state.data("incidents")
        self.url = f"http://{self.service.address}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.service.spawned.process if self.service.spawned is not None else None

    def start(self, timeout_s: float = 30.0) -> None:
        self.service.start(healthy=self._healthy, timeout_s=timeout_s)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:  # noqa: S310 (loopback)
                return dict(json.load(answer))
        except (OSError, ValueError):
            return None

    def _healthy(self) -> bool:
        body = self.health()
        return body is not None and body.get("status") == "healthy"

    def _files_current(self) -> bool:
        body = self.health()
        return body is not None and body["checks"]["database"]["export_pending"] == 0

    def wait_files_current(self, timeout_s: float = 60.0) -> None:
        """Until the receiver reports no incident file behind the store."""
        wait_until(self._files_current, timeout_s=timeout_s, interval_s=0.05, what="incident files caught up")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the receiver process so far (all its threads); None without /proc."""
        if self.process is None:
            return None
        try:
            return proc_stats.cpu_seconds(self.process.pid)
        except OSError:
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        self.service.kill()

    def stop(self, timeout_s: float = 20.0) -> None:
        self.service.stop(timeout_s)


# -- workload ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    index: int
    body: bytes
    duplicate: bool


@dataclass
class Workload:
    lanes: list[list[Sent]]
    keys: set[tuple[str, int]] = field(default_factory=set)
    episodes: int = 0
    resolved_episodes: int = 0
    unique: int = 0
    duplicates: int = 0

    @property
    def total(self) -> int:
        return self.unique + self.duplicates

    def all(self) -> list[Sent]:
        return [item for lane in self.lanes for item in lane]


def build_workload(
    notifications: int,
    duplicate_ratio: float,
    *,
    lanes: int,
    seed: int = 7,
    episodes_per_group: int = 2,
    resolve_ratio: float = 0.7,
) -> Workload:
    """Groups whose episodes fire 1-4 alerts one notification at a time, most then resolve.

    A group fires a second episode only once its first resolved, so each episode is exactly one
    incident whatever the interleaving of lanes and duplicates.

    Every notification carries the group's whole current alert set (as Alertmanager's do).
    Groups are spread over lanes; a lane sends its groups' notifications in order, and each
    duplicate is a re-send of one of the lane's earlier notifications, placed later.
    """
    rng = random.Random(seed)
    unique_target = round(notifications * (1 - duplicate_ratio))
    work = Workload(lanes=[[] for _ in range(lanes)])
    sequences: list[list[bytes]] = [[] for _ in range(lanes)]
    group = 0
    while work.unique < unique_target:
        lane = group % lanes
        for episode in range(episodes_per_group):
            if work.unique >= unique_target:
                break
            start = T0 + (group * 10 + episode) * 3600 * NS_PER_S
            size = rng.randint(1, 4)
            specs = [
                AlertSpec(
                    {
                        "alertname": "BurstAlert",
                        "service": f"svc-{group}",
                        "severity": rng.choice(("warning", "critical")),
                        "instance": f"host-{k}:9100",
                    },
                    start + k * NS_PER_S,
                    annotations={"summary": f"group {group} alert {k}", "runbook_url": "https://runbooks/burst"},
                    expr="up == 0",
                )
                for k in range(size)
            ]
            work.episodes += 1
            for step in range(1, size + 1):
                if work.unique >= unique_target:
                    break
                sequences[lane].append(json.dumps(group_notification(specs[:step])).encode())
                work.keys.update((s.fingerprint, s.starts_at_ns) for s in specs[:step])
                work.unique += 1
            if work.unique < unique_target and rng.random() < resolve_ratio:
                done = [
                    AlertSpec(s.labels, s.starts_at_ns, s.starts_at_ns + 600 * NS_PER_S, s.annotations, s.expr)
                    for s in specs
                ]
                sequences[lane].append(json.dumps(group_notification(done)).encode())
                work.keys.update((s.fingerprint, s.starts_at_ns) for s in specs)
                work.unique += 1
                work.resolved_episodes += 1
            else:
                break  # a group fires again only after it resolved (else it is the same incident)
        group += 1
    duplicates_target = notifications - work.unique
    dup_per_lane = [0] * lanes
    for n in range(duplicates_target):
        dup_per_lane[n % lanes] += 1
    index = 0
    for lane, sequence in enumerate(sequences):
        items: list[tuple[bytes, bool]] = [(body, False) for body in sequence]
        for _ in range(dup_per_lane[lane]):
            if not sequence:
                break
            original = rng.randrange(len(items))
            body = items[original][0]
            items.insert(rng.randint(original + 1, len(items)), (body, True))
            work.duplicates += 1
        for body, duplicate in items:
            work.lanes[lane].append(Sent(index, body, duplicate))
            index += 1
    return work


# -- sending -------------------------------------------------------------------------------------


@dataclass
class Delivery:
    acked: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


async def send(
    url: str,
    lanes: Sequence[Sequence[Sent]],
    delivery: Delivery,
    *,
    deadline_s: float,
    stop_lane: Callable[[], bool] = lambda: False,
    request_timeout_s: float = 10.0,
) -> None:
    """Send each lane in order, concurrently; a notification counts only when answered 200."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    connector = aiohttp.TCPConnector(limit=len(lanes) or 1)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def run(lane: Sequence[Sent]) -> None:
            for item in lane:
                if stop_lane() or loop.time() > deadline:
                    return
                if item.index in delivery.acked:
                    continue
                started = loop.time()
                try:
                    async with session.post(
                        f"{url}/alerts", data=item.body, headers={"Content-Type": "application/json"}
                    ) as answer:
                        await answer.read()
                        delivery.statuses[answer.status] = delivery.statuses.get(answer.status, 0) + 1
                        if answer.status == 200:
                            delivery.acked.add(item.index)
                            delivery.failed.discard(item.index)
                            delivery.latencies_s.append(loop.time() - started)
                            continue
                except (aiohttp.ClientError, TimeoutError, ConnectionError):
                    pass
                delivery.failed.add(item.index)

        await asyncio.gather(*(run(lane) for lane in lanes))


# -- verification --------------------------------------------------------------------------------


def store_report(data_dir: Path, work: Workload) -> dict[str, Any]:
    """Compare the receiver's database with what was sent (read-only; safe while it runs)."""
    database = data_dir / "incidents.sqlite3"
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT fingerprint, starts_at_ns FROM alerts").fetchall()
        incidents = dict(conn.execute("SELECT status, count(*) FROM incidents GROUP BY status").fetchall())
        empty = conn.execute(
            "SELECT count(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.id)"
        ).fetchone()[0]
    finally:
        conn.close()
    stored = [(str(fp), int(start)) for fp, start in rows]
    distinct = set(stored)
    total_incidents = sum(int(v) for v in incidents.values())
    return {
        "incidents_stored": total_incidents,
        "incidents_expected": work.episodes,
        "incidents_resolved": int(incidents.get("resolved", 0)),
        "incidents_resolved_expected": work.resolved_episodes,
        "alerts_stored": len(stored),
        "alerts_expected": len(work.keys),
        "duplicates_created": (len(stored) - len(distinct)) + max(0, total_incidents - work.episodes) + empty,
        "lost": len(work.keys - distinct),
        "unexpected": len(distinct - work.keys),
    }


def files_report(url: str, data_dir: Path) -> dict[str, Any]:
    """Every incident's JSON file equals the API's view of it."""
    directory = data_dir / "incidents"
    files = sorted(directory.glob("incident-*.json"))
    mismatched = 0
    for path in files:
        incident_id = path.stem.split("-", 1)[1]
        with urllib.request.urlopen(f"{url}/incidents/{incident_id}", timeout=5) as answer:  # noqa: S310 (loopback)
            api = json.load(answer)
        if json.loads(path.read_text(encoding="utf-8")) != api:
            mismatched += 1
    with urllib.request.urlopen(f"{url}/incidents?limit=1", timeout=5) as answer:  # noqa: S310 (loopback)
        total = int(json.load(answer)["total"])
    return {"files": len(files), "files_mismatched": mismatched, "incidents_via_api": total}


# -- the benchmark -------------------------------------------------------------------------------


def run(notifications: int, duplicate_ratio: float, lanes: int, timeout_s: float, seed: int) -> dict[str, Any]:
    work = build_workload(notifications, duplicate_ratio, lanes=lanes, seed=seed)
    with tempfile.TemporaryDirectory(prefix="fd-bench-incidents-") as tmp:
        receiver = ReceiverProcess(Path(tmp))
        receiver.start()
        try:
            delivery = Delivery()
            cpu_before = receiver.cpu_seconds()
            started = time.perf_counter()
            asyncio.run(send(receiver.url, work.lanes, delivery, deadline_s=timeout_s))
            elapsed = time.perf_counter() - started
            cpu_after = receiver.cpu_seconds()
            receiver.wait_files_current(timeout_s=120)
            store = store_report(receiver.data_dir, work)
            files = files_report(receiver.url, receiver.data_dir)
        finally:
            receiver.stop()
    latencies = sorted(delivery.latencies_s) or [0.0]
    # The receiver's CPU per notification depends far less on the machine's load than throughput.
    cpu_s = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return {
        "notifications_sent": len(delivery.acked) + len(delivery.failed),
        "notifications_acked": len(delivery.acked),
        "notifications_unique": work.unique,
        "notifications_duplicate": work.duplicates,
        "http_statuses": {str(k): v for k, v in sorted(delivery.statuses.items())},
        "elapsed_s": round(elapsed, 3),
        "throughput_per_s": round(len(delivery.acked) / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "receiver_cpu_s": round(cpu_s, 2) if cpu_s is not None else None,
        "receiver_cpu_ms_per_notification": round(cpu_s * 1000 / max(1, len(delivery.acked)), 3)
        if cpu_s is not None
        else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        **store,
        **files,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.incidents_burst",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--notifications", type=int, default=10_000, help="notifications to send (default 10000)")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share that are re-sends (default 0.3)")
    parser.add_argument("--lanes", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument("--timeout", type=float, default=300.0, help="stop sending after this many seconds")
    parser.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    args = parser.parse_args(argv)
    if not 1 <= args.notifications <= MAX_NOTIFICATIONS:
        parser.error(f"--notifications must be between 1 and {MAX_NOTIFICATIONS}")
    if not 0.0 <= args.duplicates < 1.0:
        parser.error("--duplicates must be in [0, 1)")
    if not 1 <= args.lanes <= 256:
        parser.error("--lanes must be between 1 and 256")
    print(
        f"[bench] {args.notifications} notifications, {args.duplicates:.0%} duplicates, {args.lanes} lanes", flush=True
    )
    result = run(args.notifications, args.duplicates, args.lanes, args.timeout, args.seed)
    ok = (
        result["duplicates_created"] == 0
        and result["lost"] == 0
        and result["notifications_acked"] == args.notifications
        and result["incidents_stored"] == result["incidents_expected"]
        and result["files_mismatched"] == 0
        and result["files"] == result["incidents_stored"]
    )
    report = {
        "benchmark": "incidents_burst",
        "command": f"python -m bench.incidents_burst --notifications {args.notifications} "
        f"--duplicates {args.duplicates} --lanes {args.lanes} --seed {args.seed}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "result": result,
        "targets": {"duplicates_created": 0, "lost": 0},
        "met": ok,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(key) for key in result)
    print()
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(f"\ntargets met: {ok}  (results in {RESULTS})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
