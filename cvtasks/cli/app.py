"""The ``cvtasks`` Typer application. Importing this module must not import torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

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
from cvtasks.tasks.spec import TaskSpec
from cvtasks.version import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}
_BUILT: dict[str, Any] = {}  # task name -> its click command, built on first use


class LazyTaskGroup(TyperGroup):
    """The root command group. A task's command (one option per config key, from its config
    dataclass) is built only when that task runs or shows its help; the root's help lists every
    task from its one-line help alone, so ``cvtasks --help`` imports no task module."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        child = _child(name, rest)
        if child is not None:  # `eval detect ...`: the sub-command's own options
            if child.name not in _BUILT:
                _BUILT[child.name] = _task_command(child)
            return f"{name} {child.kind}", _BUILT[child.name], rest[1:]
        if name in TASKS:
            if name not in _BUILT:
                _BUILT[name] = _task_command(TASKS[name])
            command = _BUILT[name]
        return name, command, rest


def _child(name: str | None, rest: list[str]) -> TaskSpec | None:
    """The sub-command spec ``rest[0]`` names under ``name`` (``eval detect``), if any."""
    if not rest:
        return None
    return next((s for s in TASKS.values() if s.parent == name and s.kind == rest[0]), None)


def _task_command(spec: TaskSpec) -> Any:
    """The click command of one task, as Typer builds it from the generated function."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(spec.name, help=spec.help, context_settings=CONTEXT)(make_task_command(spec))
    return typer.main.get_command(single)


app = typer.Typer(
    name="cvtasks",
    cls=LazyTaskGroup,
    help="Computer-vision tasks from the command line, over torchvision's pretrained models: "
    "classify, detect, segment, track, estimate pose, gaze and depth on images, folders, "
    "videos and streams; explain what a CNN sees; train and evaluate a classifier on your own "
    "classes. Files in, files out, for shell one-liners, YAML jobs and Makefiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
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


def _listed_only() -> None:
    """Stands in for a task in the root's listing; LazyTaskGroup runs the real command."""


for _spec in TASKS.values():
    if _spec.parent is None:  # sub-commands are reached through their parent
        app.command(_spec.name, help=_spec.help)(_listed_only)


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
