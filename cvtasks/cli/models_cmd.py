"""``cvtasks models list | info | pull``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated

import typer

from cvtasks.cli.common import handle_errors

models_app = typer.Typer(help="List, describe and download models.", no_args_is_help=True)


@models_app.command("list")
@handle_errors
def list_cmd(
    task: Annotated[
        str | None, typer.Option("--task", "-t", help="Only this task's models.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="table, jsonl or json (default: table on a terminal)."),
    ] = None,
) -> None:
    """Models per task: parameters, GFLOPs, headline metric, and whether weights are cached."""
    from cvtasks.catalog import list_models
    from cvtasks.tasks.registry import get_task

    if task is not None:
        get_task(task)
    rows = list_models(task)
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    if fmt == "json":
        print(json.dumps([asdict(r) for r in rows], indent=2))
    elif fmt == "jsonl":
        for r in rows:
            print(json.dumps(asdict(r)))
    elif fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for col, justify in [
            ("model", "left"),
            ("task", "left"),
            ("params (M)", "right"),
            ("GFLOPs", "right"),
            ("metric", "left"),
            ("value", "right"),
            ("cached", "center"),
        ]:
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            table.add_row(
                r.name,
                r.task,
                f"{r.params_m:.1f}" if r.params_m else "-",
                f"{r.gflops:.2f}" if r.gflops is not None else "-",
                r.metric,
                f"{r.value:.2f}" if r.value is not None else "-",
                "yes" if r.cached else "",
            )
        Console().print(table)
    else:
        from cvtasks.errors import UsageError

        raise UsageError(f"unknown format '{fmt}': use table, jsonl or json")


@models_app.command("info")
@handle_errors
def info_cmd(
    name: Annotated[str, typer.Argument(help="Model name, e.g. resnet50.")],
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            "-w",
            help="A weights file or run folder: which release it is (by its SHA-256) and the "
            "preprocessing cvtasks gives it.",
        ),
    ] = None,
    release: Annotated[
        str | None, typer.Option("--release", help="The release a weights file was made from.")
    ] = None,
) -> None:
    """All weights of a model as JSON: URL, cache file, metrics, preprocessing, licence; with
    -w FILE, what that file is and the preprocessing it runs with."""
    from cvtasks.catalog import model_info, weights_info

    info = model_info(name) if weights is None else weights_info(name, weights, release)
    print(json.dumps(info, indent=2, default=str))


@models_app.command("pull")
@handle_errors
def pull_cmd(
    names: Annotated[
        list[str], typer.Argument(help="model or model:WEIGHTS, e.g. resnet50:IMAGENET1K_V1")
    ],
) -> None:
    """Download weights into the cache ahead of time (prints each cached file)."""
    from cvtasks.catalog import pull

    for name in names:
        path = pull(name)
        print(f"{name}: {path}")
