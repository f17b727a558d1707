"""The incident files' encoder writes exactly what json.dumps(indent=2, sort_keys=True) writes."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.incidents import pretty_json
from services.incidents.models import NS_PER_S
from services.incidents.payloads import AlertSpec, group_notification


def reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400)
@given(documents)
def test_any_json_document_is_written_as_json_dumps_writes_it(value: Any) -> None:
    assert pretty_json.dumps(value) == reference(value)


def test_an_incident_document_is_written_as_json_dumps_writes_it() -> None:
    start = 1_714_564_800 * NS_PER_S
    note = group_notification(
        [
            AlertSpec({"alertname": "Down", "service": "résumé", "severity": "critical"}, start, start + NS_PER_S),
            AlertSpec({"alertname": "Down", "service": 'x\u2028y "quoted" \\ \t'}, start, annotations={"a": "🔥"}),
        ]
    )
    document = {
        **note,
        "empty_object": {},
        "empty_list": [],
        "nested": [[], [{}], {"b": [1, 2.5, None, True, False]}],
        "duration_seconds": 600.0,
        "tiny": 1e-7,
        "huge": 1e300,
        "not_a_number": math.nan,
        "infinite": [math.inf, -math.inf],
        "id": 2**63 - 1,
    }
    assert pretty_json.dumps(document) == reference(document)


class Colour(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    A = "a"


def test_values_it_does_not_render_itself_go_to_json_dumps() -> None:
    for value in [
        {"colour": Colour.RED},
        {"name": Name.A},
        {"tuple": (1, 2)},
        {1: "int key", 2: "another"},
        [{"nested": {"deep": Colour.RED}}],
    ]:
        assert pretty_json.dumps(value) == reference(value)
