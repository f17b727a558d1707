"""The incident receiver's domain errors; the shared error middleware turns them into JSON."""

from __future__ import annotations

from services.common.errors import BadRequest, NotFound, Unavailable


class InvalidPayload(BadRequest):
    """The webhook body is not a valid Alertmanager (version 4) notification; ``field`` says where."""

    code = "invalid_payload"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field)
        self.field = field


class IncidentNotFound(NotFound):
    code = "incident_not_found"


class StoreUnavailable(Unavailable):
    """The notification could not be committed; Alertmanager will retry it."""

    code = "store_unavailable"
