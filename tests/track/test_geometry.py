"""Lines, zones and ground plane: parsing errors and the geometry of crossings."""

from __future__ import annotations

import re

import pytest

from cvtasks.errors import UsageError
from cvtasks.track.geometry import (
    anchor_point,
    crossing,
    inside,
    parse_ground,
    parse_line,
    parse_zone,
)


def test_a_line_drawn_left_to_right_counts_moving_down_as_in():
    line = parse_line("door=0,100,200,100").resolve(640, 480)
    assert crossing((50, 90), (50, 110), line) == "in"
    assert crossing((50, 110), (50, 90), line) == "out"
    assert crossing((250, 90), (250, 110), line) is None  # beside the segment
    assert crossing((50, 90), (60, 95), line) is None  # the same side
    # touching the line then leaving on the same side is no crossing; touching then going on is one
    assert (
        crossing((50, 90), (50, 100), line) is None and crossing((50, 100), (50, 110), line) == "in"
    )


def test_fractions_resolve_against_the_frame_size():
    line = parse_line("mid=0.5,0,0.5,1")
    assert line.fractional and line.resolve(200, 100) == ((100.0, 0.0), (100.0, 100.0))
    assert parse_line("px=0,0,320,240").fractional is False
    zone = parse_zone("z=0,0,0.5,0,0.5,0.5").resolve(100, 100)
    assert inside((10, 5), zone) and not inside((40, 45), zone)


@pytest.mark.parametrize(
    ("parse", "spec", "message"),
    [
        (parse_line, "door=1,2,3", "needs 4 numbers"),
        (parse_line, "door", "expected NAME=x1,y1"),
        (parse_line, "door=1,2,1,2", "two points are the same"),
        (parse_line, "door=a,b,c,d", "must be numbers"),
        (parse_line, "gate=0,0.6,1,1.5", "1.5 is outside the frame"),  # not a 1-px line
        (parse_line, "gate=-10,5,100,5", "-10 is outside the frame"),
        (parse_zone, "z=0,0,0.5,0,0.5,1.2", "1.2 is outside the frame"),
        (parse_zone, "z=0,0,10,0", "at least 3 points"),
        (parse_zone, "z=0,0,10,0,10", "at least 3 points"),
        (parse_zone, "bow=0,0,10,10,10,0,0,10", "intersects itself (edges 1 and 3)"),
        (parse_zone, "flat=0,0,5,5,10,10", "no area"),
        (parse_ground, "0,0,1,0,1,1,0,1", "expected x1,y1"),
        (parse_ground, "0,0,1,0,1,1:0,0,1,0,1,1,0,1", "needs 8 numbers"),
        (
            parse_ground,
            "0,0,1,1,2,2,0,5:0,0,1,0,1,1,0,1",
            "three of the image points are on one line",
        ),
    ],
)
def test_malformed_shapes_are_usage_errors(parse, spec, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(spec)


def test_ground_homography_maps_pixels_to_metres():
    # a 100 x 50 px rectangle on the image is a 20 x 10 m patch of road
    ground = parse_ground("100,100,200,100,200,150,100,150:0,0,20,0,20,10,0,10")
    assert ground.to_metres((150, 125)) == pytest.approx((10.0, 5.0), abs=1e-6)
    assert ground.to_metres((200, 150)) == pytest.approx((20.0, 10.0), abs=1e-6)


def test_anchor_points():
    assert anchor_point([10, 20, 30, 60], "bottom-center") == (20, 60)
    assert anchor_point([10, 20, 30, 60], "center") == (20, 40)
    assert anchor_point([10, 20, 30, 60], "top-center") == (20, 20)


def test_whole_numbers_beyond_one_are_pixels():
    assert parse_line("door=0,100,640,100").fractional is False
    assert parse_line("door=0,0.5,1,0.5").fractional is True
