"""Configuration errors a user can act on: every problem with its path (and line) in the file.

A problem is a location in the configuration (``assets[3].zone``) and a message. Where the
value came from is added when the problem is shown: the line in the file, or the environment
variable that set it. At most `MAX_SHOWN` problems are kept and shown; the rest are counted
("and N more"), so a file with 100,000 broken entries gives a readable report, not 100,000 lines.
Input values are never echoed: a mistyped secret must not end up in a terminal or a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from adapters.safe_yaml import lines_of, quote

__all__ = ["MAX_SHOWN", "ConfigError", "Problems", "env_name", "format_loc", "quote"]

#: Problems shown (and described with their line) per report; the rest are counted.
MAX_SHOWN = 50

Location = tuple[int | str, ...]
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigError(Exception):
    """The configuration is unusable; `problems` are lines like ``assets[3].zone (line 9): ...``.

    Parameters
    ----------
    path
        The configuration file.
    problems
        Described problems; only the first `MAX_SHOWN` are kept.
    hidden
        Further problems found but not kept.
    """

    def __init__(self, path: Path, problems: list[str], hidden: int = 0) -> None:
        self.path = path
        self.problems = problems[:MAX_SHOWN]
        self.hidden = hidden + max(0, len(problems) - MAX_SHOWN)
        super().__init__(f"{path}: {self.count} problem(s)")

    @property
    def count(self) -> int:
        """All problems found, shown or not."""
        return len(self.problems) + self.hidden

    def report(self) -> str:
        """The text shown to the user: the file, then one problem per line."""
        lines = [f"{self.path}: invalid configuration ({self.count} problem(s))"]
        lines += [f"  {self.path}: {problem}" for problem in self.problems]
        if self.hidden:
            lines.append(f"  {self.path}: and {self.hidden} more problem(s)")
        return "\n".join(lines)


class Problems:
    """Collects ``(location, message)`` problems, keeping the first `MAX_SHOWN` of them."""

    def __init__(self) -> None:
        self.items: list[tuple[Location, str]] = []
        self.hidden = 0

    def __bool__(self) -> bool:
        """Whether any problem was found (shown or only counted)."""
        return bool(self.items) or self.hidden > 0

    def add(self, loc: Sequence[int | str], message: str) -> None:
        """Record one problem at `loc` (a path into the configuration; empty for the file)."""
        if len(self.items) < MAX_SHOWN:
            self.items.append((tuple(loc), message))
        else:
            self.hidden += 1

    def add_validation(self, exc: ValidationError, prefix: Sequence[int | str] = ()) -> bool:
        """Record pydantic's errors, located below `prefix`.

        Returns
        -------
        bool
            Whether a whole-model check failed (its items are recorded as located problems).
        """
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        model_level = False
        for error in errors:
            loc = [part for part in error["loc"] if not _is_union_tag(part)]
            message = error["msg"].removeprefix("Value error, ")
            if not loc and not prefix:
                # Cross-reference checks report several "path: message" items in one error.
                model_level = True
                self.add_text(message.split("; "))
            else:
                self.add((*prefix, *loc), message)
        return model_level

    def add_text(self, items: Iterable[str]) -> None:
        """Record ``section[i].field: message`` items."""
        for item in items:
            where, _, text = item.partition(": ")
            self.add(_parse_path(where), text)

    def error(self, path: Path, text: str | None) -> ConfigError:
        """A ConfigError with every problem described (lines looked up in `text`)."""
        lines = lines_of(text, [loc for loc, _ in self.items if loc]) if text else {}
        described = [
            f"{format_loc(loc)}{_where(loc, lines.get(loc))}: {message}" if loc else message
            for loc, message in self.items
        ]
        return ConfigError(path, described, self.hidden)


def env_name(loc: Sequence[int | str]) -> str:
    """The environment variable that sets the value at `loc` (`GRIDCOORD_MQTT__PORT`)."""
    return "GRIDCOORD_" + "__".join(str(part).upper() for part in loc)


def format_loc(loc: Sequence[int | str]) -> str:
    """``assets[3].mqtt.topic`` for ``("assets", 3, "mqtt", "topic")``.

    A key that is not a plain name (a newline, a control character, 5,000 characters) is
    shown quoted and shortened, so it can neither forge a report line nor flood it.
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{quote(part)}]"
    return text


def _where(loc: Location, line: int | None) -> str:
    """`` (from GRIDCOORD_X__Y)`` when the environment set the value, else `` (line N)``."""
    environment = {key.upper() for key in os.environ if key.upper().startswith("GRIDCOORD_")}
    for n in range(len(loc), 0, -1):
        head = loc[:n]
        if all(isinstance(part, str) for part in head) and env_name(head) in environment:
            return f" (from {env_name(head)})"
    return f" (line {line})" if line is not None else ""


def _is_union_tag(part: int | str) -> bool:
    # pydantic inserts tags like "function-after[...]" into locations of validated unions.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float"})


def _parse_path(where: str) -> list[int | str]:
    parts: list[int | str] = []
    for chunk in where.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        parts += [int(i) for i in indices if i.isdigit()]
    return parts
