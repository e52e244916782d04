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
    errors = exc.errors(include_input=False, include_url=False)
    # A series is "number or list of numbers": pydantic reports the branch that does not fit
    # the input too ("should be a valid number" for a list). Keep the other branch's errors.
    wrong = {"float_type", "float_parsing", "list_type"}
    fitting: dict[tuple[int | str, ...], int] = {}  # errors of the branch that fits the input
    for error in errors:
        prefix = _union_prefix(error["loc"])
        if prefix is not None:
            fitting[prefix] = fitting.get(prefix, 0) + (error["type"] not in wrong)
    lines: list[str] = []
    reported: set[tuple[int | str, ...]] = set()
    for error in errors:
        prefix = _union_prefix(error["loc"])
        if prefix is not None and error["type"] in wrong:
            if fitting[prefix] == 0 and prefix not in reported:
                reported.add(prefix)
                lines.append(
                    f"{_where(list(prefix), raw)}: should be a number or a list of numbers"
                )
            continue
        loc = [part for part in error["loc"] if not _is_union_tag(part)]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            lines += message.split("; ")
            continue
        lines.append(f"{_where(loc, raw)}: {message}")
    return lines


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the branch of a union in the location ("constrained-float", "list[...]").
    return isinstance(part, str) and ("[" in part or "-" in part or part in {"float", "int"})


def _union_prefix(loc: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    for i, part in enumerate(loc):
        if _is_union_tag(part):
            return tuple(loc[:i])
    return None


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
