"""The floor for hello -> response: bare aiohttp, one shared client session, the same mTLS hop.

    python -m bench.floor.pair response PORT CERT KEY CA
    python -m bench.floor.pair hello PORT CERT KEY CA UPSTREAM_PORT

response serves GET /response over mTLS (client certificate required, from the same CA); hello
serves GET /hello in plain HTTP and calls response through one kept-alive client session,
verifying response's certificate. No instrumentation, no logging, no checks beyond TLS itself:
what any service doing this hop must pay (bench/floor_bench.py compares Firedrill with it).
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def respond(request: web.Request) -> web.Response:
    return web.json_response({"message": "Greetings from response", "service": "response"})


async def hello(request: web.Request) -> web.Response:
    # The same pinned name as Firedrill's hello: every certificate also carries 127.0.0.1.
    async with request.app[SESSION].get(request.app[UPSTREAM], server_hostname="response.service.consul") as answer:
        body = await answer.json()
    return web.json_response({"message": "Hello, world!", "response": body["message"]})


def main(role: str, port: str, cert: str, key: str, ca: str, upstream_port: str = "") -> None:
    purpose = ssl.Purpose.CLIENT_AUTH if role == "response" else ssl.Purpose.SERVER_AUTH
    context = ssl.create_default_context(purpose, cafile=ca)
    context.load_cert_chain(cert, key)
    app = web.Application()
    if role == "response":
        context.verify_mode = ssl.CERT_REQUIRED
        app.router.add_get("/response", respond)
        web.run_app(app, host="127.0.0.1", port=int(port), ssl_context=context, access_log=None, print=None)
        return

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as client:
            app[SESSION] = client
            yield

    app[UPSTREAM] = f"https://127.0.0.1:{upstream_port}/response"
    app.cleanup_ctx.append(session)
    app.router.add_get("/hello", hello)
    web.run_app(app, host="127.0.0.1", port=int(port), access_log=None, print=None)


if __name__ == "__main__":
    main(*sys.argv[1:])
