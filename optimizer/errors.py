"""Turn a refused problem into lines a user can act on, each naming the offending element."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_KINDS = {"zones": "zone", "chargers": "charger", "sessions": "session"}


def describe_problem_errors(exc: ValidationError, raw: Any) -> list[str]:
    """One line per problem: ``session 's-17' (sessions[3]).energy_kwh: ...``.

    Parameters
    ----------
    exc : the error `Problem.model_validate` raised.
    raw : the input that was validated, used to look up the id of a list element.

    Input values are not echoed back (an id is, because it is what the user must look for).
    """
    lines: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [part for part in error["loc"] if not _is_union_tag(part)]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            lines += message.split("; ")
            continue
        lines.append(f"{_where(loc, raw)}: {message}")
    return lines


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the branch of a union in the location ("float", "list[...]").
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str"})


def _where(loc: list[int | str], raw: Any) -> str:
    head, *rest = loc
    if isinstance(head, str) and head in _KINDS and rest and isinstance(rest[0], int):
        index = rest[0]
        element = f"{head}[{index}]"
        ident = _id_of(raw, head, index)
        if ident is not None:
            element = f"{_KINDS[head]} {ident!r} ({element})"
        tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest[1:])
        return element + tail
    text = str(head)
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _id_of(raw: Any, section: str, index: int) -> str | None:
    try:
        ident = raw[section][index]["id"]
    except (KeyError, IndexError, TypeError):
        return None
    return ident if isinstance(ident, str) else None
