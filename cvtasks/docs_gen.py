"""The option reference (``docs/options.md``) generated from the config dataclasses, so that the
documentation and the code cannot disagree: ``python -m cvtasks.docs_gen > docs/options.md``
(``make docs``); a test compares the file with this output."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from cvtasks.config import BaseConfig, config_fields, field_types, meta_of, panel_order

HEADER = """# Options reference

Generated from the config dataclasses by `make docs` (`python -m cvtasks.docs_gen`); do not
edit by hand. Every option is also a YAML key (the name with underscores, e.g. `top_k`) for
`-c FILE`, `--set KEY=VALUE` and `cvtasks run JOB.yaml`. Precedence: defaults < config file <
`--set` < options on the command line. "resume" marks the options whose change makes earlier
results in `--out` incompatible (`--resume` refuses to mix them); the others never change a
record (a test runs each one).
"""


def _default(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _flags(field: dataclasses.Field[Any], tp: Any) -> str:
    meta = meta_of(field)
    long = "--" + field.name.replace("_", "-")
    if tp is bool and meta.negatable:
        long += f" / --no-{field.name.replace('_', '-')}"
    if meta.repeatable:
        long += " (repeatable)"
    return f"`{meta.flag}` `{long}`" if meta.flag else f"`{long}`"


def options_table(cls: type[BaseConfig], skip: tuple[str, ...] = ()) -> Iterator[str]:
    """Markdown rows for the command-line options of a config class."""
    hints = field_types(cls)
    defaults = cls()
    yield "| option | default | meaning | resume |"
    yield "|---|---|---|---|"
    for field in panel_order(config_fields(cls)):
        meta = meta_of(field)
        if not meta.cli or field.name in skip:
            continue
        text = meta.help + (f" One of: {', '.join(meta.choices)}." if meta.choices else "")
        text = text.replace("|", "\\|")
        mark = "yes" if meta.affects_results else ""
        default = _default(getattr(defaults, field.name)).replace("|", "\\|")
        yield f"| {_flags(field, hints[field.name])} | {default} | {text} | {mark} |"


def commands() -> list[tuple[str, type[BaseConfig], str]]:
    """(command line, config class, one-line help) for every command with a config."""
    from cvtasks.tasks.registry import TASKS

    found = []
    for spec in TASKS.values():
        positional = "".join(f" {name.upper()}" for name in spec.positional)
        found.append((f"cvtasks {spec.name}{positional} [INPUTS...]", spec.config_cls, spec.help))
    return found


def options_markdown() -> str:
    """The whole ``docs/options.md``."""
    lines = [HEADER]
    for command, cls, help_text in commands():
        lines += [f"## `{command}`", "", help_text, "", *options_table(cls), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(options_markdown(), end="")
