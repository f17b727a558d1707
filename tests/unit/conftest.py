from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _catalog_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see the catalog's own ports, whatever the integration platform set."""
    monkeypatch.delenv("FIREDRILL_PORT_OFFSET", raising=False)
