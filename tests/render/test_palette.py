"""Colours a person can tell apart, and text readable on them."""

from __future__ import annotations

import numpy as np

from cvtasks.detect.predictor import Detection, draw_detections
from cvtasks.render.palette import (
    _lab,
    class_colour,
    contrast,
    instance_colour,
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


def test_two_objects_of_one_class_get_two_colours():
    image = np.zeros((120, 240, 3), np.uint8)
    spoons = [
        Detection("spoon", 50, 0.9, [10, 10, 100, 100]),
        Detection("spoon", 50, 0.8, [130, 10, 220, 100]),
    ]
    drawn = draw_detections(image, spoons)
    left, right = tuple(drawn[60, 10]), tuple(drawn[60, 130])  # on each box's left edge
    assert left == instance_colour(0) and right == instance_colour(1) and left != right


def test_class_colours_are_stable_and_distinct_for_voc():
    assert class_colour(15) == class_colour(15)
    assert min_lab_distance([class_colour(i) for i in range(1, 21)]) > 25
