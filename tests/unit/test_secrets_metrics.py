"""vault_reachable means: the identity's last Vault call succeeded, within its interval."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.common.secrets_metrics import VaultContact, vault_reachable_gauge
from tests.unit.helpers import Clock


def test_reachable_only_while_the_last_call_succeeded_recently_enough() -> None:
    clock = Clock(100.0)
    contact = VaultContact(window_s=5.0, clock=clock)
    registry = CollectorRegistry()
    vault_reachable_gauge(registry).labels("hello").set_function(contact.reachable)

    def value() -> float | None:
        return registry.get_sample_value("vault_reachable", {"service": "hello"})

    assert value() == 0  # no call yet
    contact.succeeded()
    assert value() == 1
    clock.now += 5.0
    assert value() == 1
    clock.now += 0.1  # no call since: a frozen Vault holds the next one until it times out
    assert value() == 0
    contact.succeeded()
    contact.failed()
    assert value() == 0
