"""A service's own admin token: read once at start-up, it opens the debugging endpoints of its ops port.

Every catalog service is given its own token (``secret/firedrill/<name>/admin``, rendered to the
file ``FIREDRILL_ADMIN_TOKEN_FILE`` names), so a token taken from one service opens nothing on
another. Like every secret file it may be rendered after the process starts: the wait is bounded
(``services.common.secret_files``). Without the variable the endpoints stay shut.
"""

from __future__ import annotations

from aiohttp import web

from services.common.config import ServiceConfig
from services.common.debug_endpoints import DEBUG_TOKEN_KEY
from services.common.secret_files import DEFAULT_WAIT_S, read_when_present


async def read_admin_token(config: ServiceConfig, timeout_s: float = DEFAULT_WAIT_S) -> str | None:
    """The token in ``config.admin_token_file`` once it is rendered; None when no file is configured."""
    if config.admin_token_file is None:
        return None
    return await read_when_present(config.admin_token_file, what="the admin token", timeout_s=timeout_s)


async def guard_debug_endpoints(ops: web.Application, config: ServiceConfig) -> None:
    """Give an ops application this service's admin token, unless the service already handed it one."""
    if DEBUG_TOKEN_KEY in ops:
        return
    token = await read_admin_token(config)
    if token is not None:
        ops[DEBUG_TOKEN_KEY] = token
