from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.incidents.config import ENV_VARS, IncidentsConfig


def test_defaults_live_under_the_state_directory(tmp_path: Path) -> None:
    config = IncidentsConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    assert config.data_dir == tmp_path.resolve() / "data" / "incidents"
    assert config.database == config.data_dir / "incidents.sqlite3"
    assert config.export_dir == config.data_dir / "incidents"
    assert config.prometheus_url is None
    assert config.service.port == 5001
    assert config.service.name == "incidents"


def test_environment_overrides(tmp_path: Path) -> None:
    config = IncidentsConfig.from_env(
        {
            "FIREDRILL_DATA_DIR": str(tmp_path / "d"),
            "FIREDRILL_PROMETHEUS_URL": "http://127.0.0.1:9090/",
            "FIREDRILL_ENRICH_TIMEOUT_MS": "500",
            "FIREDRILL_ENRICH_QUEUE": "10",
            "FIREDRILL_WRITE_BATCH": "8",
        }
    )
    assert config.data_dir == tmp_path / "d"
    assert config.prometheus_url == "http://127.0.0.1:9090"
    assert config.enrich_timeout_s == 0.5
    assert (config.enrich_queue_size, config.write_batch) == (10, 8)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIREDRILL_PROMETHEUS_URL", "prometheus:9090"),
        ("FIREDRILL_ENRICH_TIMEOUT_MS", "0"),
        ("FIREDRILL_ENRICH_QUEUE", "many"),
        ("FIREDRILL_WRITE_BATCH", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        IncidentsConfig.from_env({name: value})
    assert caught.value.variable == name


def test_every_variable_read_is_declared() -> None:
    for name in ("FIREDRILL_DATA_DIR", "FIREDRILL_PROMETHEUS_URL", "FIREDRILL_PORT"):
        assert name in ENV_VARS
