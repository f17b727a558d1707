"""Writing a secret file: atomically, readable by its owner only.

Its own module, without cryptography, so that the OpenBao dev-server wrapper (which writes only
its token file) does not load cryptography and prometheus_client for it; nor the secrets module,
whose hmac import loads OpenSSL's hash library (≈ 4 MB resident) for a random file name.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: bytes) -> None:
    """Atomically replace ``path`` with ``content``, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
