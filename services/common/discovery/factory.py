"""Choose the registry implementation from configuration."""

from __future__ import annotations

from services.common.config import ConfigError, ServiceConfig
from services.common.discovery.base import Registry
from services.common.discovery.local import LocalRegistry


def make_registry(config: ServiceConfig) -> Registry:
    if config.discovery == "consul":
        if not config.consul_addr:
            raise ConfigError("CONSUL_HTTP_ADDR", "required when FIREDRILL_DISCOVERY=consul")
        from services.common.discovery.consul import ConsulRegistry

        return ConsulRegistry(  # type: ignore[no-any-return,unused-ignore]
            config.consul_addr, ttl_s=config.timing.heartbeat_ttl_s, ca_file=config.consul_ca_file
        )
    targets_dir = config.registry_dir.parent / "prometheus" / "targets"
    return LocalRegistry(config.registry_dir, config.timing.heartbeat_ttl_s, targets_dir)
