"""``cvtasks report OUT``: the static web page of a run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtasks.cli.common import handle_errors


@handle_errors
def report_cmd(
    out: Annotated[Path, typer.Argument(help="The --out folder of a cvtasks run.")],
    target: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where the page goes (default: OUT/report)."),
    ] = None,
    open_page: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
    thumb_size: Annotated[
        int, typer.Option("--thumb-size", min=64, max=1024, help="Thumbnail side in pixels.")
    ] = 256,
) -> None:
    """Write a self-contained page (index.html with its script, styles and thumbnails; opens
    from file://, fetches nothing): the job, summaries with plots, every result with filters,
    and the failures. Prints the page's path."""
    from cvtasks.report.page import build_report

    page = build_report(out, target, thumb_size)
    print(page)
    if open_page:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())
