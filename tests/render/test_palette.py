"""Colours a person can tell apart, and text readable on them."""

from __future__ import annotations

import numpy as np

from cvtasks.render.palette import (
    _lab,
    class_colour,
    contrast,
    palette,
    text_colour,
)


def min_lab_distance(colours) -> float:
    lab = _lab(np.array(colours, dtype=np.float64) / 255)
    distance = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    return float(distance.min())


def test_first_colours_are_far_apart_in_cielab():
    # The 20-colour palette of the previous release had two colours 19.8 apart (bottle and
    # book shared a yellow through index % 20); any prefix of this one is better separated.
    assert min_lab_distance(palette()[:8]) > 50
    assert min_lab_distance(palette()[:20]) > 30
    assert len(set(palette())) == len(palette())


def test_text_on_every_colour_reads_at_wcag_aa():
    for fill in palette():
        assert contrast(fill, text_colour(fill)) >= 4.5, fill
    assert text_colour((255, 255, 0)) == (0, 0, 0) and text_colour((0, 0, 128)) == (255, 255, 255)


def test_class_colours_are_stable_and_distinct_for_voc():
    assert class_colour(15) == class_colour(15)
    assert min_lab_distance([class_colour(i) for i in range(1, 21)]) > 25


def test_arrow_heads_point_along_the_arrow():
    from cvtasks.render.draw import arrow_head_points

    tip, left, right = arrow_head_points((0.0, 0.0), (100.0, 0.0), 10.0)
    assert tip == (100.0, 0.0)
    assert left[0] == right[0] == 90.0 and left[1] == -right[1] != 0  # barbs behind the tip
    assert arrow_head_points((5.0, 5.0), (5.0, 5.0), 10.0) is None
