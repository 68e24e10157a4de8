"""Building a config from layers (defaults < YAML < --set < command line) with every value
checked against its declared type and range, and dumping a config back to commented YAML."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml

from cvtasks.config import (
    BaseConfig,
    OptionMeta,
    config_fields,
    field_types,
    meta_of,
    panel_order,
    suggest,
)
from cvtasks.errors import ConfigError
from cvtasks.safe_yaml import load_yaml_text

C = TypeVar("C", bound=BaseConfig)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _coerce(key: str, value: Any, tp: Any, origin: str, repeatable: bool = False) -> Any:
    """Check one value against its declared type; strings from --set are parsed here."""
    optional, inner = _is_optional(tp)
    where = f"{origin}: key '{key}'"
    if value is None or (optional and isinstance(value, str) and value.lower() in ("null", "~")):
        if optional:
            return None
        raise ConfigError(f"{where} must not be empty")
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        ):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if inner is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if inner is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if inner is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if typing.get_origin(inner) is list:
        if isinstance(value, str) and value.strip().startswith("["):  # --set 'inputs=[a, b]'
            value = load_yaml_text(f"{key}: {value.strip()}", origin)[key]
        if isinstance(value, str) and repeatable:  # one item that may contain commas
            return [value.strip()] if value.strip() else []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return [str(v) for v in value]
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {tp!r}")  # pragma: no cover - schema bug


def _check_range(key: str, value: Any, meta: OptionMeta, origin: str) -> None:
    if value is None:
        return
    if meta.choices is not None and value not in meta.choices:
        raise ConfigError(
            f"{origin}: key '{key}' must be one of {', '.join(meta.choices)}, got {value!r}"
            + suggest(str(value), meta.choices)
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if meta.minimum is not None and value < meta.minimum:
            raise ConfigError(f"{origin}: key '{key}' must be >= {meta.minimum}, got {value}")
        if meta.maximum is not None and value > meta.maximum:
            raise ConfigError(f"{origin}: key '{key}' must be <= {meta.maximum}, got {value}")


def validate_layer(
    cls: type[BaseConfig], data: Mapping[str, Any], origin: str, extra_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """Check a mapping of overrides against ``cls``: unknown keys, types and ranges."""
    fields = {f.name: f for f in config_fields(cls)}
    hints = field_types(cls)
    allowed = set(fields) | set(extra_keys)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"{origin}: keys must be strings, got {key!r}")
        if key not in allowed:
            raise ConfigError(f"{origin}: unknown key '{key}'" + suggest(key, sorted(allowed)))
        if key not in fields:
            out[key] = value
            continue
        coerced = _coerce(key, value, hints[key], origin, meta_of(fields[key]).repeatable)
        _check_range(key, coerced, meta_of(fields[key]), origin)
        out[key] = coerced
    return out


def parse_set_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """Turn repeated ``--set key=value`` strings into a mapping (values typed later)."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        result[key] = value.strip()
    return result


def build_config(cls: type[C], layers: Iterable[tuple[str, Mapping[str, Any]]]) -> C:
    """Apply validated layers over the defaults, later layers winning (defaults < file < CLI)."""
    values: dict[str, Any] = {}
    for origin, data in layers:
        values.update(validate_layer(cls, data, origin))
    cfg = cls(**values)
    cfg.__dict__["_given"] = frozenset(values)  # not a field: never dumped or compared
    return cfg


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def dump_config(cfg: BaseConfig, task: str, *, comments: bool = True, header: str = "") -> str:
    """A YAML document of every key, each with its help as a comment (for humans and --out)."""
    lines = [f"# {line}" for line in header.splitlines()] + [f"task: {task}"]
    panel = None
    for f in panel_order(config_fields(type(cfg))):
        meta = meta_of(f)
        if comments:
            if meta.panel != panel:
                panel = meta.panel
                lines.append("")
                lines.append(f"# --- {panel.lower()} options ---")
            lines.append(f"# {meta.help}")
        lines.append(f"{f.name}: {_yaml_value(getattr(cfg, f.name))}")
    return "\n".join(lines) + "\n"
