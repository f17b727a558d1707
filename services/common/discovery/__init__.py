"""Service discovery: a Registry protocol with local-file and Consul implementations."""

from services.common.discovery.base import (
    DiscoveryError,
    Instance,
    NoHealthyInstance,
    Registry,
    pick_instance,
)

__all__ = ["DiscoveryError", "Instance", "NoHealthyInstance", "Registry", "pick_instance"]
