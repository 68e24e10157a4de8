"""Safe YAML for configs, jobs and run folders: ``yaml.SafeLoader`` only, duplicate keys
refused, size and alias-expansion limits checked before anything is constructed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cvtasks.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_NODES = 100_000


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys and oversized documents."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} at line {key_node.start_mark.line + 1}: "
                    "each key may appear once"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_size(root: yaml.Node) -> None:
    """Count nodes, following aliases, so an alias bomb is refused before it is constructed."""
    budget = MAX_YAML_NODES
    stack = [root]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"YAML document too large (over {MAX_YAML_NODES} values once expanded)"
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def load_yaml_text(text: str, origin: str) -> dict[str, Any]:
    """Parse YAML text safely into a mapping; every failure is a :class:`ConfigError`."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{origin}: config file larger than {MAX_CONFIG_BYTES} bytes")
    try:
        loader = _StrictSafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return {}
            _check_size(node)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(
            f"{origin}: unsupported YAML tag ({exc.problem}); only plain values are allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """Read and parse a YAML config file (exit 2 if missing or invalid)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{p}: config file larger than {MAX_CONFIG_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    return load_yaml_text(text, str(p))
