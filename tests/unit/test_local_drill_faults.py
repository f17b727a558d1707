"""The local platform's drill faults without a platform: the start-up fault in supervisord's config,
and the partition through a real local registry and a real proxy on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.deploy_target.interface import PlatformError
from scripts.deploy_target.startup_fault import VALUE, VARIABLE
from scripts.local.partition import LocalPartition, refusal
from scripts.local.programs import ProgramSpec, StateLayout
from scripts.local.startup_fault import with_startup_fault
from scripts.local.supervisor import render_config
from services.common.discovery.base import Instance
from services.common.discovery.local import LocalRegistry
from services.common.profiles import DRILL
from services.common.waiting import wait_until

# --- start-up fault -----------------------------------------------------------------------------------


def _config(tmp_path: Path) -> str:
    programs = [
        ProgramSpec("hello", ("python", "-m", "services.hello"), (), None, env={"A": "1", "PATHS": "x,y"}),
        ProgramSpec("response", ("python", "-m", "services.response"), (), None, env={"B": 'say "hi"'}),
        ProgramSpec("bare", ("/bin/true",), (), None),
    ]
    return render_config(StateLayout(tmp_path), programs, DRILL)


def _section(config: str, program: str) -> str:
    return config.split(f"[program:{program}]", 1)[1].split("\n[", 1)[0]


def test_the_fault_changes_one_programs_environment_and_comes_off_exactly(tmp_path: Path) -> None:
    config = _config(tmp_path)
    broken = with_startup_fault(config, "hello", broken=True)
    assert f'{VARIABLE}="{VALUE}"' in _section(broken, "hello")
    assert 'PATHS="x,y"' in _section(broken, "hello")  # a comma inside quotes is not a separator
    assert _section(broken, "response") == _section(config, "response")
    assert with_startup_fault(broken, "hello", broken=True) == broken  # idempotent
    assert with_startup_fault(broken, "hello", broken=False) == config
    assert with_startup_fault(config, "hello", broken=False) == config  # nothing to take away


def test_a_program_without_environment_gets_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    broken = with_startup_fault(config, "bare", broken=True)
    assert f'environment={VARIABLE}="{VALUE}"' in _section(broken, "bare")
    assert with_startup_fault(broken, "bare", broken=False).count(VALUE) == 0


def test_unknown_programs_and_a_level_already_set_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with pytest.raises(PlatformError, match="no program 'nope'"):
        with_startup_fault(config, "nope", broken=True)
    already = config.replace('environment=A="1"', f'environment={VARIABLE}="DEBUG",A="1"')
    with pytest.raises(PlatformError, match="already sets FIREDRILL_LOG_LEVEL"):
        with_startup_fault(already, "hello", broken=True)


# --- partition ------------------------------------------------------------------------------------------


@pytest.fixture
def response_server() -> Iterator[int]:
    """A stand-in for response's listener: answers every connection with b'pong'."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"pong")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _registered(registry_dir: Path, service: str) -> list[Instance]:
    return asyncio.run(LocalRegistry(registry_dir, 60).healthy_instances(service))


def test_only_a_pair_with_a_discovered_path_and_no_other_discovering_caller_can_be_cut() -> None:
    assert refusal("hello", "response") is None
    assert "does not call" in (refusal("response", "hello") or "")
    assert "not a Firedrill service" in (refusal("hello", "nope") or "")
    assert refusal("movie", "rating") is None  # movie is rating's only caller through discovery


def test_partition_routes_callers_into_a_blackhole_and_heal_restores_the_registration(
    tmp_path: Path, response_server: int
) -> None:
    registry_dir, faults = tmp_path / "registry", tmp_path / "faults"
    real = Instance("response", "response-1", "127.0.0.1", response_server, {"metrics_port": "9160"})
    asyncio.run(LocalRegistry(registry_dir, 60).register(real))
    partition = LocalPartition(registry_dir, faults, ttl_s=60)

    [port] = partition.cut("hello", "response")
    [seen] = _registered(registry_dir, "response")
    assert (seen.instance_id, seen.host, seen.port, seen.meta) == ("response-1", "127.0.0.1", port, real.meta)
    assert (faults / "partition-response.json").exists()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"ping")
        proxy = partition._proxies["response"][0].proxy
        wait_until(lambda: proxy.stats["swallowed_bytes"] == 4, timeout_s=10, what="the ping swallowed")
        assert proxy.stats["forwarded_bytes"] == 0  # the real listener never heard of it
    with pytest.raises(PlatformError, match="already partitioned"):
        partition.cut("hello", "response")

    assert partition.heal("response") is True
    assert _registered(registry_dir, "response") == [real]
    assert not (faults / "partition-response.json").exists()
    assert partition.heal("response") is False  # nothing left to heal


def test_a_heal_from_another_process_restores_from_the_saved_registration(tmp_path: Path, response_server: int) -> None:
    registry_dir, faults = tmp_path / "registry", tmp_path / "faults"
    real = Instance("response", "response-1", "127.0.0.1", response_server)
    asyncio.run(LocalRegistry(registry_dir, 60).register(real))
    first = LocalPartition(registry_dir, faults, ttl_s=60)
    first.cut("hello", "response")
    # A second drill process (or the runner's final repair) knows only the state folder.
    assert LocalPartition(registry_dir, faults, ttl_s=60).heal("response") is True
    assert _registered(registry_dir, "response") == [real]
    first.heal("response")  # its proxies stop; the registration stays real
    assert _registered(registry_dir, "response") == [real]


def test_a_callee_without_a_live_instance_cannot_be_partitioned(tmp_path: Path) -> None:
    partition = LocalPartition(tmp_path / "registry", tmp_path / "faults", ttl_s=60)
    with pytest.raises(PlatformError, match="no healthy instance"):
        partition.cut("hello", "response")
    assert not (tmp_path / "faults" / "partition-response.json").exists()


def test_a_partition_whose_drill_was_killed_is_healed_and_a_held_one_is_not(
    tmp_path: Path, response_server: int
) -> None:
    """kill -9 of a partition drill takes its proxies with it: the callee's registrations point at nothing
    until the next `make up` or partition heals them; a partition whose drill still runs is left alone."""
    registry_dir, faults = tmp_path / "registry", tmp_path / "faults"
    real = Instance("response", "response-1", "127.0.0.1", response_server)
    asyncio.run(LocalRegistry(registry_dir, 60).register(real))
    holder = LocalPartition(registry_dir, faults, ttl_s=60)
    holder.cut("hello", "response")
    assert LocalPartition(registry_dir, faults, ttl_s=60).heal_orphans() == []  # held by this live process
    assert _registered(registry_dir, "response") != [real]

    saved = faults / "partition-response.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "pid": int(dead.stdout)}))
    assert LocalPartition(registry_dir, faults, ttl_s=60).heal_orphans() == ["response"]
    assert _registered(registry_dir, "response") == [real]
    assert not saved.exists()
    holder.heal("response")
