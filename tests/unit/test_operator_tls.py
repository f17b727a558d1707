"""An operator command reading its certificate while the renderer rewrites it waits for a matching pair."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from scripts.deploy_target import interface
from scripts.deploy_target.interface import Endpoints
from scripts.vault.throwaway_pki import ThrowawayPki
from services.common.waiting import TimedOut


def _endpoints(files_folder: Path, pki: ThrowawayPki) -> Endpoints:
    files = pki.write(files_folder, "operator")
    return Endpoints(services={}, prometheus="", alertmanager="", incidents="", operator_tls=files)


def _half_rendered(tmp_path: Path) -> tuple[Endpoints, Path]:
    """The operator's folder with a new certificate beside the previous key, as between two writes."""
    pki = ThrowawayPki()
    endpoints = _endpoints(tmp_path / "operator", pki)
    renewed = pki.write(tmp_path / "renewed", "operator")
    assert endpoints.operator_tls is not None
    shutil.copyfile(renewed.cert, endpoints.operator_tls.cert)
    return endpoints, renewed.key


def test_a_pair_still_being_written_is_waited_for(tmp_path: Path) -> None:
    endpoints, renewed_key = _half_rendered(tmp_path)
    assert endpoints.operator_tls is not None
    finish = threading.Timer(0.5, shutil.copyfile, (renewed_key, endpoints.operator_tls.key))
    finish.start()
    try:
        assert endpoints.client_ssl() is not None
    finally:
        finish.join()


def test_a_pair_that_never_matches_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interface, "OPERATOR_TLS_WAIT_S", 0.5)
    endpoints, _ = _half_rendered(tmp_path)
    with pytest.raises(TimedOut, match=r"a matching certificate and key in .*operator"):
        endpoints.client_ssl()
