"""Build one Typer command per task from its config dataclass.

Every config key becomes an option (``top_k`` -> ``--top-k``) with the key's help, so the CLI,
the YAML files and ``cvtasks config show`` can never disagree. Only options given on the
command line override the config file (click's parameter source tells which were given).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cvtasks.cli.common import handle_errors, run_and_exit
from cvtasks.config import BaseConfig, config_fields, field_types, meta_of
from cvtasks.config_build import build_config, parse_set_overrides
from cvtasks.errors import ConfigError
from cvtasks.safe_yaml import load_yaml_file
from cvtasks.tasks.spec import TaskSpec

_CLI_ONLY = ("inputs", "config", "set_")


def _option_for(name: str, tp: Any, default: Any, cfg_cls: type[BaseConfig]) -> inspect.Parameter:
    field = next(f for f in config_fields(cfg_cls) if f.name == name)
    meta = meta_of(field)
    long_name = "--" + name.replace("_", "-")
    if tp is bool and meta.negatable:
        decls = [f"{long_name}/--no-{name.replace('_', '-')}"]
    else:
        decls = [long_name]
    if meta.flag:
        decls.append(meta.flag)
    help_text = meta.help
    if meta.choices:
        help_text += f" [{'|'.join(meta.choices)}]"
    info = typer.Option(*decls, help=help_text, rich_help_panel=f"{meta.panel} options")
    if typing.get_origin(tp) is list and meta.repeatable:  # --line A=... --line B=...
        tp, default = list[str] | None, None
    elif typing.get_origin(tp) is list:  # comma-separated on the command line
        tp, default = str | None, (",".join(default) or None)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[tp, info]
    )


def _positional_for(name: str, cfg_cls: type[BaseConfig]) -> inspect.Parameter:
    meta = meta_of(next(f for f in config_fields(cfg_cls) if f.name == name))
    help_text = meta.help + (f" One of: {', '.join(meta.choices)}." if meta.choices else "")
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[str, typer.Argument(help=help_text, show_default=False)],
    )


def config_from_cli(
    spec: TaskSpec,
    ctx: typer.Context,
    inputs: list[str] | None,
    config_file: Path | None,
    sets: list[str] | None,
    values: dict[str, Any],
) -> BaseConfig:
    """Layer defaults < config file < --set < options given on the command line."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        data = load_yaml_file(config_file)
        task = data.pop("task", spec.name)
        if task != spec.name:
            raise ConfigError(f"{config_file}: is a '{task}' config, not '{spec.name}'")
        layers.append((str(config_file), data))
    if sets:
        layers.append(("--set", dict(parse_set_overrides(sets))))
    given = {
        name: value
        for name, value in values.items()
        if (source := ctx.get_parameter_source(name)) is not None and source.name == "COMMANDLINE"
    }
    if inputs:
        given["inputs"] = list(inputs)
    layers.append(("command line", given))
    return build_config(spec.config_cls, layers)


def make_task_command(spec: TaskSpec) -> Callable[..., None]:
    """A Typer command function whose options are the fields of ``spec.config_cls``."""
    cfg_cls = spec.config_cls
    hints = field_types(cfg_cls)
    defaults = cfg_cls()
    option_names = [f.name for f in config_fields(cfg_cls) if meta_of(f).cli]
    inputs_field = next(f for f in config_fields(cfg_cls) if f.name == "inputs")

    @handle_errors
    def command(ctx: typer.Context, **kwargs: Any) -> None:
        values = {name: kwargs[name] for name in option_names}
        values.update({name: kwargs[name] for name in spec.positional})
        cfg = config_from_cli(spec, ctx, kwargs["inputs"], kwargs["config"], kwargs["set_"], values)
        run_and_exit(spec, cfg)

    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *[_positional_for(name, cfg_cls) for name in spec.positional],
        inspect.Parameter(
            "inputs",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                list[str] | None,
                typer.Argument(help=meta_of(inputs_field).help, show_default=False),
            ],
        ),
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(
                    "--config",
                    "-c",
                    help="YAML config file (see `cvtasks config show`).",
                    rich_help_panel="Config options",
                ),
            ],
        ),
        inspect.Parameter(
            "set_",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                list[str] | None,
                typer.Option(
                    "--set",
                    help="Override one config key: --set key=value (repeatable).",
                    rich_help_panel="Config options",
                    show_default=False,
                ),
            ],
        ),
    ]
    params += [
        _option_for(name, hints[name], getattr(defaults, name), cfg_cls) for name in option_names
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = spec.name
    command.__doc__ = spec.help
    return command
