"""Axes ticks and event-label layout of the drill report's charts."""

from __future__ import annotations

from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from scripts.drills.axes import time_label, time_ticks, value_formatter, value_ticks
from scripts.drills.label_layout import place_labels, text_width


def test_time_ticks_are_round_wall_clock_instants_inside_the_window() -> None:
    start, end = 1_700_000_003.4, 1_700_000_048.9  # a 45 s drill window
    ticks = time_ticks(start, end)
    assert 4 <= len(ticks) <= 10
    assert all(start <= t <= end for t in ticks)
    assert all(t % 5 == 0 for t in ticks)
    assert [time_label(t, UTC) for t in ticks[:2]] == ["22:13:25", "22:13:30"]


def test_a_long_window_gets_minute_ticks() -> None:
    ticks = time_ticks(0, 600)
    assert ticks == [0, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600]


def test_value_ticks_start_at_zero_and_cover_the_top_with_round_steps() -> None:
    assert value_ticks(19.6) == [0, 5, 10, 15, 20]
    assert value_ticks(2444.0) == [0, 500, 1000, 1500, 2000, 2500]
    assert value_ticks(1.0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert value_ticks(0.0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0], "an all-zero series still gets an axis"


def test_ratios_read_as_percentages_and_numbers_as_the_step_needs() -> None:
    assert value_formatter("ratio", 0.2)(0.4) == "40 %"
    assert value_formatter("ratio", 0.005)(0.015) == "1.5 %"
    assert value_formatter("ms", 500)(1500) == "1500"
    assert value_formatter("req/s", 0.5)(1.5) == "1.5"


def test_coinciding_events_are_stacked_in_rows() -> None:
    placed = place_labels(
        [(300.0, "alert firing +4.3 s"), (300.5, "incident recorded +4.4 s"), (301.0, "response restarted")],
        left=0,
        right=900,
        font_size=11,
    )
    assert sorted(p.row for p in placed) == [0, 1, 2]
    assert [p.x for p in placed] == [300.0, 300.5, 301.0], "results keep the input order"


def test_labels_far_apart_share_the_first_row() -> None:
    placed = place_labels([(100.0, "traffic starts"), (600.0, "steady again")], left=0, right=900, font_size=11)
    assert [p.row for p in placed] == [0, 0]


def test_a_label_near_the_right_edge_goes_left_of_its_line() -> None:
    (placed,) = place_labels([(890.0, "traffic stops")], left=0, right=900, font_size=11)
    assert placed.text_x + placed.width < 890.0
    assert placed.text_x >= 0


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=900), st.text(alphabet="abc +.s", min_size=1, max_size=30)),
        max_size=12,
    )
)
def test_labels_never_overlap_in_a_row_and_stay_inside(items: list[tuple[float, str]]) -> None:
    placed = place_labels(items, left=0, right=900, font_size=11)
    for label, (_, text) in zip(placed, items, strict=True):
        assert label.width == text_width(text, 11)
        assert label.text_x >= 0
        assert label.text_x + label.width <= 900
        assert not (label.text_x < label.x < label.text_x + label.width), "a label never sits across its own line"
    for a in placed:
        for b in placed:
            if a is not b and a.row == b.row:
                assert a.text_x + a.width <= b.text_x or b.text_x + b.width <= a.text_x
