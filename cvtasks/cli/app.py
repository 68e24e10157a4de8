"""The ``cvtasks`` Typer application. Importing this module must not import torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtasks.cli.common import (
    handle_errors,
    install_signal_handlers,
    install_warning_format,
    run_and_exit,
)
from cvtasks.cli.config_cmd import config_app
from cvtasks.cli.inspect_cmd import inspect_cmd
from cvtasks.cli.models_cmd import models_app
from cvtasks.cli.report_cmd import report_cmd
from cvtasks.cli.task_command import make_task_command
from cvtasks.tasks.registry import TASKS
from cvtasks.version import __version__

app = typer.Typer(
    name="cvtasks",
    help="Computer-vision tasks from the command line: classify images and videos with "
    "torchvision models, from shell one-liners, YAML jobs and Makefiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"cvtasks {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Computer-vision tasks from the command line."""


for _spec in TASKS.values():
    app.command(_spec.name, help=_spec.help)(make_task_command(_spec))


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def run_job(
    ctx: typer.Context,
    job: Annotated[Path, typer.Argument(help="Job YAML: task, inputs and any task options.")],
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one job key: --set key=value (repeatable)."),
    ] = None,
) -> None:
    """Run a batch job fully described by a YAML file (`task:`, `inputs:`, options).

    The job's task options may follow and win over the file, e.g.
    `cvtasks run job.yaml --weights w.pth -b 4` (same names as `cvtasks TASK --help`)."""
    from cvtasks.jobs import load_job

    spec, cfg = load_job(job, sets or [], ctx.args)
    run_and_exit(spec, cfg)


app.command("inspect")(inspect_cmd)
app.command("report")(report_cmd)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")


def main() -> None:
    """Console-script entry point."""
    install_signal_handlers()
    install_warning_format()
    app()
