"""Configuration errors a user can act on: every problem with its path (and line) in the file."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError


class ConfigError(Exception):
    """The configuration file is unusable; `problems` are lines like ``assets[3].zone: ...``."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: {len(problems)} problem(s)")
        self.path = path
        self.problems = problems

    def report(self) -> str:
        """The text shown to the user: the file, then one problem per line."""
        lines = [f"{self.path}: invalid configuration ({len(self.problems)} problem(s))"]
        lines += [f"  {self.path}: {problem}" for problem in self.problems]
        return "\n".join(lines)


def describe_errors(exc: ValidationError, path: Path) -> list[str]:
    """Turn pydantic's errors into ``section[i].field (line N): message`` lines.

    Input values are not echoed: a mistyped secret must not end up in a terminal or a log.
    """
    root = _compose(path)
    problems: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [part for part in error["loc"] if not _is_union_tag(part)]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            # Cross-reference checks report several "path: message" items in one error.
            problems += _describe_items(message.split("; "), root)
            continue
        problems.append(f"{_format_loc(loc)}{_where(root, loc)}: {message}")
    return problems


def describe_errors_text(items: list[str], path: Path) -> list[str]:
    """Add line (or environment variable) to ``section[i].field: message`` items."""
    return _describe_items(items, _compose(path))


def _describe_items(items: list[str], root: yaml.Node | None) -> list[str]:
    described = []
    for item in items:
        where, _, text = item.partition(": ")
        described.append(f"{where}{_where(root, _parse_path(where))}: {text}")
    return described


def _where(root: yaml.Node | None, loc: list[int | str]) -> str:
    """`` (from GRIDCOORD_X__Y)`` when the environment set the value, else `` (line N)``."""
    if loc and all(isinstance(part, str) for part in loc):
        name = "GRIDCOORD_" + "__".join(str(part).upper() for part in loc)
        if any(key.upper() == name for key in os.environ):
            return f" (from {name})"
    line = _line_of(root, loc)
    return f" (line {line})" if line is not None else ""


def _is_union_tag(part: int | str) -> bool:
    # pydantic inserts tags like "function-after[...]" into locations of validated unions.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float"})


def _format_loc(loc: list[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _parse_path(where: str) -> list[int | str]:
    parts: list[int | str] = []
    for chunk in where.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        parts += [int(i) for i in indices if i.isdigit()]
    return parts


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _line_of(node: yaml.Node | None, loc: list[int | str]) -> int | None:
    """1-based line of the deepest node of `loc` present in the file (None if not from the file)."""
    if node is None:
        return None
    line: int | None = None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
