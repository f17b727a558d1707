from __future__ import annotations

from typing import Any

from aiohttp import web

from services.common.errors import BadRequest
from services.common.params import bounded_int
from services.common.web import json_error
from services.incidents.errors import IncidentNotFound
from services.incidents.models import Status
from services.incidents.receiver import Receiver
from services.incidents.validation import ALERT_BUDGET_BYTES, MAX_ALERTS, MAX_BODY_BYTES

RECEIVER_KEY = web.AppKey("incidents_receiver", Receiver)

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000
MAX_SERVICE_CHARS = 256
MAX_ID = 2**63 - 1


async def receive_alerts(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return json_error(
            413,
            "payload_too_large",
            f"request body is over {MAX_BODY_BYTES} bytes: room for {MAX_ALERTS} alerts (Alertmanager's"
            f" max_alerts) of {ALERT_BUDGET_BYTES} bytes each",
        )
    receipt = await receiver.receive_body(raw)
    body: dict[str, Any] = {"status": "stored", **receipt.result.as_dict()}
    if receipt.truncated_values:
        body["truncated_values"] = receipt.truncated_values
    return web.json_response(body)


async def list_incidents(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in {s.value for s in Status}:
        raise BadRequest('status must be "firing" or "resolved"', parameter="status")
    service = query.get("service") or None
    if service is not None and len(service) > MAX_SERVICE_CHARS:
        raise BadRequest(f"service must be at most {MAX_SERVICE_CHARS} characters", parameter="service")
    limit = bounded_int(query, "limit", default=50, minimum=1, maximum=MAX_LIMIT)
    offset = bounded_int(query, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
    items, total = await request.app[RECEIVER_KEY].store.list(
        status=status, service=service, limit=limit, offset=offset
    )
    return web.json_response({"incidents": items, "total": total, "limit": limit, "offset": offset})


async def get_incident(request: web.Request) -> web.Response:
    raw = request.match_info["incident_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise BadRequest("incident id must be a positive integer", parameter="incident_id", value=raw[:32])
    incident_id = int(raw)
    document = await request.app[RECEIVER_KEY].store.get(incident_id)
    if document is None:
        raise IncidentNotFound(f"no incident {incident_id}", incident_id=incident_id)
    return web.json_response(document)
