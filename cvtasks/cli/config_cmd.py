"""``cvtasks config show TASK``: the default YAML of a task, every key commented."""

from __future__ import annotations

from typing import Annotated

import typer

from cvtasks.cli.common import handle_errors
from cvtasks.config_build import dump_config
from cvtasks.tasks.registry import get_task

config_app = typer.Typer(help="Show task configs.", no_args_is_help=True)


@config_app.command("show")
@handle_errors
def show(task: Annotated[str, typer.Argument(help="Task name, e.g. classify.")]) -> None:
    """Print the default config of TASK as commented YAML (a starting point for -c FILE)."""
    spec = get_task(task)
    header = (
        f"Default config of `cvtasks {spec.name}`. Use it with -c FILE (command-line options\n"
        "win), or as a job with `cvtasks run FILE` once `inputs:` is set."
    )
    print(dump_config(spec.config_cls(), spec.name, header=header), end="")
