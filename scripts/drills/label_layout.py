"""Place event labels above a chart so that none overlaps another and all stay inside it.

Events at the same or nearby instants (an alert firing and the incident recorded a moment later,
say) would otherwise print on top of each other: each label takes the first row where it fits.
"""

from __future__ import annotations

from dataclasses import dataclass

# DejaVu Sans / system-ui average glyph width is about 0.6 em; a little more keeps estimates safe.
CHAR_WIDTH_EM = 0.62
GAP = 6.0


def text_width(text: str, font_size: float) -> float:
    return len(text) * font_size * CHAR_WIDTH_EM


@dataclass(frozen=True, slots=True)
class PlacedLabel:
    x: float  # where the event's line is
    text_x: float  # where the text starts (left edge)
    width: float
    row: int


def place_labels(
    xs_and_texts: list[tuple[float, str]], left: float, right: float, font_size: float
) -> list[PlacedLabel]:
    """Each label next to its event's line, in the lowest row where it overlaps no other label.

    Rows are filled from the left: a label goes into the lowest row whose last label ends before
    it starts. The result has the same order as the input.
    """
    starts = []
    for x, text in xs_and_texts:
        width = text_width(text, font_size)
        # Right of the event's line; left of it when there is no room (never across it).
        text_x = x + 3 if x + 3 + width <= right else x - 3 - width
        starts.append((max(text_x, left), width))
    row_ends: list[float] = []
    placed: dict[int, PlacedLabel] = {}
    for index in sorted(range(len(starts)), key=lambda i: starts[i][0]):
        text_x, width = starts[index]
        row = next((i for i, end in enumerate(row_ends) if end + GAP <= text_x), len(row_ends))
        if row == len(row_ends):
            row_ends.append(text_x + width)
        else:
            row_ends[row] = text_x + width
        placed[index] = PlacedLabel(xs_and_texts[index][0], text_x, width, row)
    return [placed[i] for i in range(len(starts))]
