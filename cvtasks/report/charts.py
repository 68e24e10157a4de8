"""Small inline SVG charts (no JavaScript library, nothing fetched): bars, histograms, lines
and a confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from cvtasks.render.palette import class_colour, instance_colour

WIDTH = 520
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _rgb(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _short(label: str, limit: int = 22) -> str:
    """A label that fits left of the bars (the full one is in the bar's tooltip)."""
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _frame(title: str, height: int, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<text x="0" y="16" {FONT} font-weight="600">{escape(title)}</text>{body}</svg>'
    )


def bars(
    title: str,
    rows: Sequence[tuple[str, float]],
    fmt: str = "{:g}",
    limit: int = 20,
    colours: Mapping[str, tuple[int, int, int]] | None = None,
) -> str:
    """Horizontal bars, largest first (at most ``limit`` rows, the rest summed); ``colours``
    keeps a label's colour the same from chart to chart."""
    rows = sorted(rows, key=lambda r: r[1], reverse=True)
    if len(rows) > limit:
        rest = sum(v for _, v in rows[limit - 1 :])
        rows = [*rows[: limit - 1], (f"{len(rows) - limit + 1} others", rest)]
    top = max((v for _, v in rows), default=0) or 1
    body, row_h = [], 20
    for i, (label, value) in enumerate(rows):
        y = 28 + i * row_h
        width = (WIDTH - 230) * value / top
        body.append(
            f'<text x="150" y="{y + 13}" {FONT} text-anchor="end">{escape(_short(label))}</text>'
            f'<rect x="156" y="{y + 2}" width="{width:.1f}" height="{row_h - 5}" '
            f'fill="{_rgb((colours or {}).get(label, class_colour(i + 1)))}">'
            f"<title>{escape(label)}: {value:g}</title></rect>"
            f'<text x="{160 + width:.1f}" y="{y + 13}" {FONT}>{escape(fmt.format(value))}</text>'
        )
    return _frame(title, 36 + row_h * max(len(rows), 1), "".join(body))


def histogram(title: str, values: Sequence[float], low: float, high: float, bins: int = 20) -> str:
    """Counts of ``values`` in ``bins`` equal bins from ``low`` to ``high``."""
    counts = [0] * bins
    span = (high - low) or 1.0
    for v in values:
        counts[min(bins - 1, max(0, int((v - low) / span * bins)))] += 1
    top = max(counts) or 1
    plot_h, bar_w = 140, (WIDTH - 60) / bins
    body = []
    for i, n in enumerate(counts):
        h = plot_h * n / top
        x = 40 + i * bar_w
        body.append(
            f'<rect x="{x:.1f}" y="{30 + plot_h - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="#3d7dd8"><title>{low + i * span / bins:.3g}-{low + (i + 1) * span / bins:.3g}: '
            f"{n}</title></rect>"
        )
    body.append(f'<text x="40" y="{plot_h + 46}" {FONT}>{low:g}</text>')
    body.append(
        f'<text x="{WIDTH - 20}" y="{plot_h + 46}" {FONT} text-anchor="end">{high:g}</text>'
    )
    body.append(f'<text x="0" y="40" {FONT}>{top}</text>')
    return _frame(title, plot_h + 56, "".join(body))


def steps(values: Sequence[tuple[float, float]], x_end: float | None) -> list[tuple[float, float]]:
    """A count that changes at events holds its value until the next one (a step, not a ramp),
    and up to ``x_end`` (the end of the clip) after the last."""
    out: list[tuple[float, float]] = []
    for x, y in values:
        if out and y != out[-1][1]:
            out.append((x, out[-1][1]))
        out.append((x, y))
    if out and x_end is not None and x_end > out[-1][0]:
        out.append((x_end, out[-1][1]))
    return out


def lines(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    x_label: str,
    x_end: float | None = None,
) -> str:
    """Step lines of cumulative counts over time, one per series, from 0 to ``x_end``."""
    series = {name: steps(values, x_end) for name, values in series.items()}
    points = [p for s in series.values() for p in s]
    if not points:
        return _frame(title, 40, f'<text x="0" y="34" {FONT}>nothing to show</text>')
    x_max = max(x for x, _ in points) or 1.0
    y_max = max(y for _, y in points) or 1.0
    plot_h, left = 140, 40
    body = []
    for i, (name, values) in enumerate(series.items()):
        colour = _rgb(instance_colour(i))
        path = " ".join(
            f"{left + (WIDTH - left - 10) * x / x_max:.1f},{30 + plot_h - plot_h * y / y_max:.1f}"
            for x, y in values
        )
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        body.append(
            f'<text x="{left + 8}" y="{44 + 16 * i}" {FONT} fill="{colour}">{escape(name)}</text>'
        )
    body.append(f'<text x="{left}" y="{plot_h + 46}" {FONT}>0</text>')
    body.append(
        f'<text x="{WIDTH - 10}" y="{plot_h + 46}" {FONT} text-anchor="end">'
        f"{x_max:g} {escape(x_label)}</text>"
    )
    body.append(f'<text x="0" y="40" {FONT}>{y_max:g}</text>')
    return _frame(title, plot_h + 56, "".join(body))


def curves(
    title: str,
    series: Mapping[str, Sequence[float]],
    x_label: str,
    colours: Mapping[str, tuple[int, int, int]] | None = None,
) -> str:
    """Lines of values sampled evenly over 0-1 (deletion and insertion curves), one a series,
    from 0 to the largest value; the legend under the plot."""
    values = [v for s in series.values() for v in s]
    if not values:
        return _frame(title, 40, f'<text x="0" y="34" {FONT}>nothing to show</text>')
    y_max = max(values) or 1.0
    plot_h, left = 140, 40
    body = [f'<line x1="{left}" y1="{30 + plot_h}" x2="{WIDTH - 10}" y2="{30 + plot_h}" '
            'stroke="#bbb"/>']  # fmt: skip
    x = left
    for i, (name, curve) in enumerate(series.items()):
        colour = _rgb((colours or {}).get(name, instance_colour(i)))
        step = (WIDTH - left - 10) / max(len(curve) - 1, 1)
        path = " ".join(
            f"{left + step * k:.1f},{30 + plot_h - plot_h * y / y_max:.1f}"
            for k, y in enumerate(curve)
        )
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        body.append(
            f'<rect x="{x}" y="{plot_h + 60}" width="14" height="4" fill="{colour}"/>'
            f'<text x="{x + 18}" y="{plot_h + 66}" {FONT}>{escape(name)}</text>'
        )
        x += 34 + 7 * len(name)
    body.append(f'<text x="{left}" y="{plot_h + 46}" {FONT}>0</text>')
    body.append(
        f'<text x="{WIDTH - 10}" y="{plot_h + 46}" {FONT} text-anchor="end">'
        f"{escape(x_label)}: 1</text>"
    )
    body.append(f'<text x="0" y="40" {FONT}>{y_max:.3g}</text>')
    return _frame(title, plot_h + 76, "".join(body))


def confusion(title: str, classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Rows: true classes; columns: predicted; shade by the row's share."""
    count = len(classes)
    cell = max(18, min(48, (WIDTH - 140) // max(count, 1)))
    body = []
    for r, row in enumerate(matrix):
        total = sum(row) or 1
        y = 40 + r * cell
        body.append(
            f'<text x="126" y="{y + cell / 2 + 4:.0f}" {FONT} text-anchor="end">'
            f"{escape(classes[r][:18])}</text>"
        )
        for c, n in enumerate(row):
            share = n / total
            shade = int(245 - 180 * share)
            ink = "#fff" if share > 0.55 else "#000"
            x = 130 + c * cell
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="rgb({shade},{shade + 5 if shade < 250 else 250},255)"/>'
                f'<text x="{x + cell / 2:.0f}" y="{y + cell / 2 + 4:.0f}" {FONT} '
                f'text-anchor="middle" fill="{ink}">{n}</text>'
            )
    body.append(f'<text x="130" y="32" {FONT}>predicted &#8594; (rows: true)</text>')
    return _frame(title, 50 + cell * count, "".join(body))
