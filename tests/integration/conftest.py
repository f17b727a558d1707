"""The local platform fixture lives in tests/conftest.py (tests/hostile shares it); its type is re-exported here."""

from tests.conftest import RunningPlatform

__all__ = ["RunningPlatform"]
