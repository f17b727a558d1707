from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from scripts import incidents_cli
from services.incidents.app import create_app
from services.incidents.config import IncidentsConfig


def test_table_aligns_and_shortens_cells() -> None:
    text = incidents_cli.table(("id", "summary"), [(1, "x" * 100), (22, None)])
    lines = text.splitlines()
    assert lines[0].startswith("ID  SUMMARY")
    assert lines[1].endswith("…")
    assert len(lines[1]) == 4 + incidents_cli.MAX_CELL
    assert lines[2] == "22  -"


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (59.9, "0m59s"), (61, "1m01s"), (3725, "1h02m05s")])
def test_durations_read_well(seconds: float | None, text: str) -> None:
    assert incidents_cli.duration(seconds) == text


async def test_list_show_and_test_alert_against_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = IncidentsConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    server = TestServer(create_app(config, metrics_registry=CollectorRegistry()), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:

        def cli(*args: str) -> int:
            return incidents_cli.main(["--url", url, *args])

        assert await asyncio.to_thread(cli, "test-alert", "--service", "response", "--resolve") == 0
        assert await asyncio.to_thread(cli, "list", "--service", "response") == 0
        listing = capsys.readouterr().out
        assert "FiredrillTestAlert" in listing
        assert "resolved" in listing
        assert "1 of 1 incident(s)" in listing
        assert await asyncio.to_thread(cli, "show", "1") == 0
        assert "runbook" in capsys.readouterr().out
        assert await asyncio.to_thread(cli, "show", "99") == 1
        assert "404" in capsys.readouterr().err
    finally:
        await server.close()


def test_an_unreachable_receiver_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert incidents_cli.main(["--url", "http://127.0.0.1:9", "list"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_ui_serves_the_local_platforms_links_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.incidents_view import server

    monkeypatch.setenv("FIREDRILL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FIREDRILL_PORT_OFFSET", "200")
    monkeypatch.delenv("NOMAD_ADDR", raising=False)
    served: list[tuple[server.ViewConfig, int]] = []
    monkeypatch.setattr(server, "serve", lambda config, port: served.append((config, port)))
    assert incidents_cli.main(["--url", "http://127.0.0.1:5201", "ui"]) == 0
    (config, port), *_ = served
    assert port == incidents_cli.UI_PORT + 200
    assert config.api_url == "http://127.0.0.1:5201"
    assert config.targets.prometheus == "http://127.0.0.1:9290"
    assert config.targets.graph_path == "/classic/graph"
    assert config.traces_dir == tmp_path / "traces"
    assert config.operator_tls is None, "plain http: no certificate to present"


def test_ui_needs_the_operator_certificate_for_an_mtls_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIREDRILL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("NOMAD_ADDR", raising=False)
    assert incidents_cli.main(["--url", "https://127.0.0.1:5001", "ui"]) == 1
    assert "no operator certificate" in capsys.readouterr().err
