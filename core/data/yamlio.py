"""Safe YAML loading that rejects duplicate keys and keeps line numbers for error messages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from probebank.errors import CardError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys and records each key's line."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise CardError(
                f"duplicate key '{key}' (first defined on line {lines[key]})",
                file=loader.name, line=key_node.start_mark.line + 1, field=str(key),
                fix="keep one definition of the key; YAML would silently drop the other")
        mapping[key] = loader.construct_object(value_node, deep=deep)
        lines[key] = key_node.start_mark.line + 1
    loader.key_lines.setdefault(id(mapping), lines)
    loader.all_key_lines.append((mapping, lines))
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class LoadedYaml:
    """A parsed YAML document plus the line of each key path (for error messages)."""

    def __init__(self, data: Any, key_lines: dict[tuple, int]) -> None:
        self.data = data
        self.key_lines = key_lines

    def line_of(self, loc: tuple) -> int | None:
        """Line of the deepest known prefix of a pydantic error location."""
        loc = tuple(loc)
        while loc:
            if loc in self.key_lines:
                return self.key_lines[loc]
            loc = loc[:-1]
        return None


def _index_lines(data: Any, registry: list[tuple[dict, dict]], prefix: tuple = ()) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    if isinstance(data, dict):
        lines = next((ln for m, ln in registry if m is data), {})
        for k, v in data.items():
            path = prefix + (k,)
            if k in lines:
                out[path] = lines[k]
            out.update(_index_lines(v, registry, path))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.update(_index_lines(v, registry, prefix + (i,)))
    return out


def load_yaml(path: Path) -> LoadedYaml:
    """Parse a YAML file safely; raise CardError naming the file and line on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CardError("file not found", file=path, fix="check the path in registry.yaml") from None
    except UnicodeDecodeError as exc:
        raise CardError(f"not valid UTF-8 ({exc.reason})", file=path, fix="save the file as UTF-8") from None
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    loader.key_lines = {}
    loader.all_key_lines = []
    try:
        data = loader.get_single_data()
    except CardError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CardError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=path,
                        line=mark.line + 1 if mark else None,
                        fix="correct the YAML syntax at that line") from None
    finally:
        loader.dispose()
    return LoadedYaml(data, _index_lines(data, loader.all_key_lines))
