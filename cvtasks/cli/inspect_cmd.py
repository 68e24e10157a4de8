"""``cvtasks inspect MODEL``: the layer table (shapes, receptive fields, params, MACs)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer

from cvtasks.cli.common import handle_errors


@handle_errors
def inspect_cmd(
    model: Annotated[
        str, typer.Argument(help="torchvision classifier or segmentation model, e.g. vgg16.")
    ],
    input_size: Annotated[
        int | None,
        typer.Option(
            "--input-size", "-s", help="Input side in pixels (default: the weights' crop)."
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option("--weights", "-w", help="A weights file: its class count sets the head."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="table, json, jsonl or csv (default: table on a terminal)."
        ),
    ] = None,
) -> None:
    """Layer table: type, kernel/stride/padding, output C x H x W, receptive field and jump,
    parameters and MACs; totals at the bottom. Sizes that do not fit are flagged."""
    from cvtasks.errors import UsageError
    from cvtasks.inspect.build import build_for_inspection, default_input_size
    from cvtasks.inspect.table import ROW_KEYS, inspect_model

    net, resolved = build_for_inspection(model, weights)
    size = input_size or default_input_size(resolved)
    if size < 8 or size > 4096:
        raise UsageError("--input-size must be between 8 and 4096")
    try:
        table = inspect_model(net, model, size)
    except RuntimeError as exc:
        raise UsageError(
            f"{model} cannot run on a {size} px input: {str(exc).splitlines()[0]}"
        ) from None
    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    if fmt == "json":
        print(json.dumps(table.to_dict(), indent=2))
    elif fmt == "jsonl":
        for row in table.rows:
            print(json.dumps(row.to_dict()))
        print(
            json.dumps(
                {
                    "total_params": table.total_params,
                    "total_gmacs": round(table.gmacs, 6),
                    "other_macs": table.other_macs,
                }
            )
        )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(ROW_KEYS)
        for row in table.rows:  # pairs as HxW; empty cells where a value does not apply
            writer.writerow([_csv_cell(row, k) for k in ROW_KEYS])
    elif fmt == "table":
        _print_table(table)
    else:
        raise UsageError(f"unknown format '{fmt}': use table, json, jsonl or csv")


def _csv_cell(row: Any, key: str) -> str:
    """CSV cells: ``true``/``false`` for the global flag, an empty rf when it is global."""
    if key == "global":
        return "true" if row.global_ else "false"
    return "" if key == "rf" and row.global_ else str(row.text(key))


def _print_table(table: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from cvtasks.inspect.table import ModelTable

    assert isinstance(table, ModelTable)
    out = Table()
    for column, justify in [
        ("layer", "left"),
        ("type", "left"),
        ("k", "right"),
        ("s", "right"),
        ("p", "right"),
        ("output", "right"),
        ("RF", "right"),
        ("jump", "right"),
        ("params", "right"),
        ("MACs", "right"),
        ("note", "left"),
    ]:
        overflow = "fold" if column == "note" else "ellipsis"  # notes wrap, never cut to '…'
        out.add_column(column, justify=justify, overflow=overflow)  # type: ignore[arg-type]
    for r in table.rows:
        out.add_row(
            *(r.text(k) for k in ("name", "type", "kernel", "stride", "padding", "output")),
            r.text("rf"),
            r.text("jump"),
            f"{r.params:,}" if r.params else "",
            f"{r.macs:,}" if r.macs else "",
            r.note or "",
        )
    blanks = [""] * 7
    if table.other_macs:
        out.add_row(
            "(functional ops)", *blanks, "", f"{table.other_macs:,}", "attention matmuls etc."
        )
    out.add_section()
    totals = f"{table.gmacs:.3f} GMACs (torchvision's 'GFLOPS')"
    out.add_row("total", *blanks, f"{table.total_params:,}", f"{table.total_macs:,}", totals)
    console = Console(width=None if sys.stdout.isatty() else 220)
    console.print(f"{table.model} @ {table.input_size} px", highlight=False, soft_wrap=True)
    console.print(out)
