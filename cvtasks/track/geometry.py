"""Lines, zones and the ground plane of `cvtasks track`: parsing (usage errors) and geometry.

Coordinates are pixels of the original frame, or, when every number of a shape lies in
[0, 1], fractions of its width and height (resolved once the frame size is known).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cvtasks.errors import UsageError

Point = tuple[float, float]


def _numbers(text: str, what: str, spec: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} {spec!r}: coordinates must be numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{what} {spec!r}: coordinates must be finite numbers")
    return values


def _named(spec: str, what: str) -> tuple[str, str]:
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise UsageError(f"{what} {spec!r}: expected NAME=x1,y1,...")
    return name.strip(), rest


def _points(values: Sequence[float]) -> list[Point]:
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def _fractions(values: Sequence[float], what: str = "", spec: str = "") -> bool:
    """Whether coordinates are fractions of the frame (all within [0, 1]) or pixels (whole
    numbers, not negative); anything else, such as 0,0.6,1,1.5, is refused (exit 2)."""
    if all(0.0 <= v <= 1.0 for v in values):
        return True
    if all(float(v).is_integer() and v >= 0 for v in values):
        return False
    bad = next(v for v in values if not 0.0 <= v <= 1.0)
    raise UsageError(
        f"{what} {spec!r}: {bad:g} is outside the frame: coordinates are either fractions of "
        "the frame's width and height, all within [0, 1], or pixels, whole numbers >= 0"
    )


def _scaled(points: Sequence[Point], fractional: bool, width: int, height: int) -> list[Point]:
    return [(x * width, y * height) for x, y in points] if fractional else list(points)


def cross(o: Point, a: Point, b: Point) -> float:
    """z of (a - o) x (b - o); positive when b is to the right of o->a in image coordinates
    (y grows downwards)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether segments p1p2 and q1q2 meet (crossing, or one touching the other)."""
    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True

    def on(a: Point, b: Point, c: Point) -> bool:  # c collinear with a-b: is it between?
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    return (
        (d1 == 0 and on(q1, q2, p1))
        or (d2 == 0 and on(q1, q2, p2))
        or (d3 == 0 and on(p1, p2, q1))
        or (d4 == 0 and on(p1, p2, q2))
    )


@dataclass(frozen=True)
class LineSpec:
    """A counting line as given: ``NAME=x1,y1,x2,y2``."""

    name: str
    points: tuple[Point, Point]
    fractional: bool

    def resolve(self, width: int, height: int) -> tuple[Point, Point]:
        a, b = _scaled(self.points, self.fractional, width, height)
        return a, b


@dataclass(frozen=True)
class ZoneSpec:
    """A polygon zone as given: ``NAME=x1,y1,x2,y2,x3,y3,...``."""

    name: str
    points: tuple[Point, ...]
    fractional: bool

    def resolve(self, width: int, height: int) -> list[Point]:
        return _scaled(self.points, self.fractional, width, height)


def parse_line(spec: str) -> LineSpec:
    """``NAME=x1,y1,x2,y2``; a line of zero length is refused."""
    name, rest = _named(spec, "--line")
    values = _numbers(rest, "--line", spec)
    if len(values) != 4:
        raise UsageError(f"--line {spec!r}: needs 4 numbers x1,y1,x2,y2, got {len(values)}")
    a, b = _points(values)
    if a == b:
        raise UsageError(f"--line {spec!r}: its two points are the same")
    return LineSpec(name, (a, b), _fractions(values, "--line", spec))


def parse_zone(spec: str) -> ZoneSpec:
    """``NAME=x1,y1,...`` with at least three points; a self-intersecting or flat polygon is
    refused."""
    name, rest = _named(spec, "--zone")
    values = _numbers(rest, "--zone", spec)
    if len(values) < 6 or len(values) % 2:
        raise UsageError(
            f"--zone {spec!r}: needs at least 3 points as x,y pairs, got {len(values)} numbers"
        )
    points = _points(values)
    count = len(points)
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbouring edges share a corner
            a1, a2 = points[i], points[(i + 1) % count]
            b1, b2 = points[j], points[(j + 1) % count]
            if segments_cross(a1, a2, b1, b2):
                raise UsageError(
                    f"--zone {spec!r}: the polygon intersects itself (edges {i + 1} and {j + 1})"
                )
    if abs(polygon_area(points)) < 1e-12:
        raise UsageError(f"--zone {spec!r}: the polygon has no area")
    return ZoneSpec(name, tuple(points), _fractions(values, "--zone", spec))


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area (shoelace)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return total / 2


def inside(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd rule point-in-polygon test."""
    x, y = point
    result = False
    count = len(polygon)
    for i in range(count):
        (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % count]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def crossing(previous: Point, current: Point, line: tuple[Point, Point]) -> str | None:
    """``"in"`` when the step previous -> current crosses the segment from the left of the
    directed line P1->P2 to its right (image coordinates, y down), ``"out"`` the other way,
    None otherwise. A point exactly on the line counts as left, so that a track touching the
    line is counted once, when it really changes side."""
    a, b = line
    before, after = cross(a, b, previous) > 0, cross(a, b, current) > 0
    if before == after or not segments_cross(previous, current, a, b):
        return None
    return "in" if after else "out"


@dataclass(frozen=True)
class Ground:
    """A homography from image pixels to metres on the ground plane."""

    matrix: np.ndarray  # 3 x 3

    def to_metres(self, point: Point) -> Point:
        x, y, w = self.matrix @ np.array([point[0], point[1], 1.0])
        return (float(x / w), float(y / w))


def parse_ground(spec: str) -> Ground:
    """``x1,y1,...,x4,y4:X1,Y1,...,X4,Y4``: four image points and the same four on the ground
    in metres. Three collinear points on either side make the mapping degenerate (refused)."""
    image_text, sep, ground_text = spec.partition(":")
    if not sep:
        raise UsageError(f"--ground {spec!r}: expected x1,y1,...,x4,y4:X1,Y1,...,X4,Y4")
    image = _numbers(image_text, "--ground", spec)
    world = _numbers(ground_text, "--ground", spec)
    if len(image) != 8 or len(world) != 8:
        raise UsageError(
            f"--ground {spec!r}: needs 8 numbers on each side of ':' (four x,y points), "
            f"got {len(image)} and {len(world)}"
        )
    for side, values in (("image", image), ("ground", world)):
        points = _points(values)
        for i in range(4):
            a, b, c = (points[j] for j in range(4) if j != i)
            if abs(cross(a, b, c)) < 1e-9 * max(1.0, max(abs(v) for v in values)) ** 2:
                raise UsageError(
                    f"--ground {spec!r}: three of the {side} points are on one line; the "
                    "mapping would be degenerate"
                )
    import cv2

    matrix = cv2.getPerspectiveTransform(
        np.array(_points(image), np.float32), np.array(_points(world), np.float32)
    )
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-12:
        raise UsageError(f"--ground {spec!r}: the points give a degenerate mapping")
    return Ground(matrix.astype(np.float64))


def anchor_point(box: Sequence[float], anchor: str) -> Point:
    """The point of a box ``[x1, y1, x2, y2]`` that lines and zones look at."""
    x1, y1, x2, y2 = box
    y = {"bottom-center": y2, "center": (y1 + y2) / 2, "top-center": y1}[anchor]
    return ((x1 + x2) / 2, y)


def unique_names(specs: Sequence[LineSpec] | Sequence[ZoneSpec], what: str) -> None:
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"{what}: the name {duplicates[0]!r} is used twice")
