"""Port offsets reserved at run time: two platforms on one machine never share a port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from scripts.ports import free_port, reserved_port_offset

BASE = frozenset({3000, 3001, 3005})


def _shifted(offset: int) -> set[int]:
    return {port + offset for port in BASE}


def test_two_live_reservations_get_disjoint_ports(tmp_path: Path) -> None:
    candidates = range(20_000, 20_010)
    with (
        reserved_port_offset(BASE, candidates=candidates, directory=tmp_path) as first,
        reserved_port_offset(BASE, candidates=candidates, directory=tmp_path) as second,
    ):
        assert not _shifted(first) & _shifted(second)
        assert sorted(p.name for p in tmp_path.glob("*.offset")) == sorted([f"{first}.offset", f"{second}.offset"])
    assert list(tmp_path.glob("*.offset")) == []


def test_a_dead_process_reservation_is_reclaimed(tmp_path: Path) -> None:
    (tmp_path / "20000.offset").write_text("999999999")  # beyond pid_max: never a live process
    with reserved_port_offset(BASE, candidates=range(20_000, 20_001), directory=tmp_path) as offset:
        assert offset == 20_000


def test_an_offset_whose_port_is_taken_is_skipped(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        base_port = taken - 20_000
        free_offset = free_port() - base_port
        with reserved_port_offset({base_port}, candidates=(20_000, free_offset), directory=tmp_path) as offset:
            assert offset == free_offset


def test_no_candidate_left_is_a_clear_error(tmp_path: Path) -> None:
    only = range(20_000, 20_001)
    with (
        reserved_port_offset(BASE, candidates=only, directory=tmp_path),
        pytest.raises(RuntimeError, match="no free port offset"),
        reserved_port_offset(BASE, candidates=only, directory=tmp_path),
    ):
        pass
