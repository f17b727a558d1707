"""The start-up fault of the crash-loop drill: one configuration value no service accepts.

Every Firedrill service reads ``FIREDRILL_LOG_LEVEL`` at start-up and refuses a level it does not
know: it prints ``configuration error: FIREDRILL_LOG_LEVEL …`` and exits with status 2 before it
binds a port or registers, as a bad configuration push would make it. Both platforms set it the
way they set any configuration: the local platform in the program's supervisord environment, Nomad
in a new job version's task ``env`` (``Platform.break_startup``); ``Platform.restore_startup``
takes it away again (locally the previous environment, on Nomad a revert to the newest version
without it).
"""

from __future__ import annotations

from collections.abc import Mapping

from scripts.deploy_target.interface import PlatformError
from services.common import catalog

VARIABLE = "FIREDRILL_LOG_LEVEL"
VALUE = "crash-loop-drill"


def require_service(unit: str) -> None:
    """Only Firedrill services read the variable: on anything else the fault would break nothing."""
    if unit not in catalog.service_names():
        raise PlatformError(
            f"{unit} is not a Firedrill service: the start-up fault is a configuration value only "
            f"the services read ({', '.join(catalog.service_names())})"
        )


def is_broken(environment: Mapping[str, str] | None) -> bool:
    return (environment or {}).get(VARIABLE) == VALUE
