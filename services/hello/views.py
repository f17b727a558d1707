from __future__ import annotations

from aiohttp import web

from services.common.errors import BadRequest
from services.common.upstream import UpstreamClient

UPSTREAM_KEY = web.AppKey("response_client", UpstreamClient)
MAX_NAME_LENGTH = 64


async def hello(request: web.Request) -> web.Response:
    name = request.query.get("name", "world")
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise BadRequest(f"name must be 1 to {MAX_NAME_LENGTH} printable characters", parameter="name")
    instance, answer = await request.app[UPSTREAM_KEY].get_json("/response")
    return web.json_response(
        {
            "message": f"Hello, {name}!",
            "response": answer.get("message"),
            "served_by": {"hello": request.host, "response": instance.instance_id},
        }
    )
