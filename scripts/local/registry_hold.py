"""Take the local file registry away from the services, and give it back (the registry-down drill).

The local registry is a folder, ``<state>/registry/instances``. Holding it moves the folder aside
(its records kept as they are) and puts a plain file in its place, so every lookup, heartbeat and
registration of every service fails with an OS error that ``LocalRegistry`` raises as
``DiscoveryError`` -- the same error, through the same code, as Consul being away. A missing folder
would not do: the registry reads that as "no instance" and a heartbeat writes the folder again.
Permissions would not do either: root reads through them.

A heartbeat that finds its record missing writes it again, so in the instant between moving the
folder and placing the file (or, on release, removing the file and moving the folder back) a
service may create a new folder; its records are merged into the held one and the move is retried.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

INSTANCES = "instances"
HELD = "instances.held"
ATTEMPTS = 20
NOTICE = (
    "The service registry is held by the registry-down drill (scripts/local/registry_hold.py).\n"
    "`make up` or `python -m scripts.drills registry-down` rollbacks give it back.\n"
)


def is_held(registry_dir: Path) -> bool:
    return (registry_dir / HELD).is_dir()


def _merge_into(source: Path, target: Path) -> None:
    """Move every record of ``source`` (``<service>/<id>.json``) into ``target``, newer ones winning."""
    for service in source.iterdir():
        if not service.is_dir():
            service.unlink(missing_ok=True)
            continue
        (target / service.name).mkdir(parents=True, exist_ok=True)
        for record in service.iterdir():
            os.replace(record, target / service.name / record.name)
    shutil.rmtree(source, ignore_errors=True)


def hold(registry_dir: Path) -> None:
    """Make the registry unreadable and unwritable for every service (idempotent)."""
    instances, held = registry_dir / INSTANCES, registry_dir / HELD
    if held.is_dir() and instances.is_file():
        return
    if instances.is_dir() and not held.exists():
        os.rename(instances, held)  # one step: no service sees a half-moved registry
    held.mkdir(parents=True, exist_ok=True)
    blocker = registry_dir / ".instances-unavailable"
    blocker.write_text(NOTICE)
    for _ in range(ATTEMPTS):
        if instances.is_dir():
            _merge_into(instances, held)  # written by a heartbeat in between
        try:
            os.rename(blocker, instances)  # fails if a heartbeat has just created the folder again
            return
        except OSError:
            continue
    raise OSError(f"could not hold the registry in {registry_dir}: services kept writing it")


def release(registry_dir: Path) -> bool:
    """Put the registry back as it was held (idempotent); True if it was held."""
    instances, held = registry_dir / INSTANCES, registry_dir / HELD
    if not held.is_dir():
        return False
    for _ in range(ATTEMPTS):
        if instances.is_file():
            instances.unlink()
        elif instances.is_dir():
            _merge_into(instances, held)  # written by a heartbeat in between: newer records win
        try:
            os.rename(held, instances)
            return True
        except OSError:
            continue
    raise OSError(f"could not give the registry in {registry_dir} back: services kept writing it")
