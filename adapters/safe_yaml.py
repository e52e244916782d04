"""Bounded YAML reading for the files users write: size, depth, alias expansion, one document.

Used for the configuration file (`gridcoord.config`) and for Modbus register maps
(`adapters.modbus.maps`); it lives in `adapters` so both may import it (adapters never import
gridcoord).

PyYAML's loader first builds the whole node tree (two marks per node, ~350 MB for a 4 MiB
file) and then recurses over it: 10,000 nested ``[`` end in RecursionError, and a 1 KB
"billion laughs" file expands, through aliases, into more values than any consumer can walk.
This module builds the data straight from the parser's events (libyaml's parser when PyYAML
has it, which is iterative) and stops at the first limit it crosses, naming the line.

Aliases stay allowed (``<<: *charger-defaults`` is a common way to write a city), but every
alias counts as the full size of what it refers to: the limit is on the expanded document.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

#: Largest configuration file read [bytes] (a 100,000-asset city fits in about 4 MB).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and sequences (the schema itself is 6 levels deep).
MAX_DEPTH = 32
#: Values in the document after aliases are expanded (a 4 MiB file holds about 700,000).
MAX_NODES = 1_000_000
#: Keys in one mapping (the largest section has about 15 fields).
MAX_MAPPING_KEYS = 256
#: Characters in one number (Python refuses to convert integers past 4,300 digits).
MAX_NUMBER_CHARS = 100

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp")
)
_NUMBER_TAGS = frozenset((_TAG + "int", _TAG + "float"))
_MERGE = _TAG + "merge"
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_MISSING = object()


class YamlProblem(Exception):
    """The file cannot be read as a bounded YAML mapping; `args[0]` says why (and where)."""


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """Read a regular UTF-8 file of at most `limit` bytes.

    The file is opened without blocking and checked after opening, so a FIFO, a device such
    as ``/dev/zero`` or a directory is refused instead of hanging or filling memory.

    Raises
    ------
    YamlProblem
        For a missing, unreadable, non-regular, oversized or non-UTF-8 file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise YamlProblem(f"cannot read file: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise YamlProblem(f"not a regular file ({_file_type(info.st_mode)})")
        if info.st_size > limit:
            raise YamlProblem(f"file is {info.st_size} bytes; the limit is {_size(limit)}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # grew while we read it
            raise YamlProblem(f"file is larger than the limit of {_size(limit)}")
    except OSError as exc:
        raise YamlProblem(f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem(f"file is not UTF-8 text (byte {exc.start})") from None


def parse(text: str, *, number_keys: bool = False) -> Any:
    """The single YAML document in `text` as plain Python values (None for an empty file).

    Mapping keys must be text (or, with `number_keys`, also integers, as register maps key
    SunSpec models and register values) and unique; merge keys (``<<``) are honoured; tags
    other than the plain scalar types are refused.

    Raises
    ------
    YamlProblem
        ``line L, column C: ...`` for invalid YAML or a crossed limit.
    """
    builder = _Builder(number_keys=number_keys)
    try:
        for event in _events(text):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(f"{_at(mark)}not valid YAML ({exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise YamlProblem(f"not valid YAML ({exc})") from None
    return builder.result


def lines_of(text: str, paths: Iterable[tuple[int | str, ...]]) -> dict[tuple[int | str, ...], int]:
    """1-based line of each path's deepest part present in the document.

    A mapping entry is located at its key, a sequence item at its start; a path through an
    alias stops at the alias. Runs over the parser's events, so memory stays small even for a
    file at the size limit (called only to describe errors).
    """
    wanted = {tuple(p) for p in paths}
    prefixes = {p[:n] for p in wanted for n in range(len(p) + 1)}
    found: dict[tuple[int | str, ...], int] = {}
    try:
        for location, line in _locations(text, prefixes):
            found[location] = line
    except yaml.YAMLError:
        pass  # lines are a courtesy; the file was parsed once already
    result = {}
    for path in wanted:
        for n in range(len(path), 0, -1):
            if path[:n] in found:
                result[path] = found[path[:n]]
                break
    return result


def quote(value: str, limit: int = 40) -> str:
    """`value` as a short, single-line, quoted text for a report (ids, keys; never secrets)."""
    shown = repr(value[:limit])
    return shown if len(value) <= limit else f"{shown[:-1]}...{shown[-1]}"


def _events(text: str) -> Iterator[yaml.Event]:
    """The parser's events up to the end of the stream (`yaml.parse` without its overhead)."""
    parser = _Parser(text)
    try:
        while True:
            event = parser.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            yield event
    finally:
        parser.dispose()


@dataclass(slots=True)
class _Frame:
    value: dict[Any, Any] | list[Any]
    anchor: str | None
    line: int
    size: int = 1
    key: str | int | None = None
    key_line: int = 0
    merges: list[Any] = field(default_factory=list)


class _Builder:
    """Plain values from parser events, with every limit checked as the events arrive."""

    def __init__(self, *, number_keys: bool = False) -> None:
        self.result: Any = None
        self._number_keys = number_keys
        self._stack: list[_Frame] = []
        self._anchors: dict[str, tuple[Any, int]] = {}
        self._nodes = 0
        self._documents = 0
        self._resolver = Resolver()
        self._constructor = SafeConstructor()
        # Plain scalars repeat (`kind: meter`, `rated_kw: 11`): resolve each text once.
        self._plain: dict[str, Any] = {}

    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.ScalarEvent):
            self._add(self._scalar(event, line), 1, event.anchor, line)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._open(event, line)
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            frame = self._stack.pop()
            if isinstance(frame.value, dict) and frame.merges:
                frame.value = _merged(frame.value, frame.merges)
            self._add(frame.value, frame.size, frame.anchor, line, counted=True)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in self._anchors:
                raise YamlProblem(f"line {line}: unknown alias *{event.anchor}")
            value, size = self._anchors[event.anchor]
            self._add(value, size, None, line)
        elif isinstance(event, yaml.DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                raise YamlProblem(f"line {line}: the file must hold one YAML document, not several")

    def _open(self, event: yaml.CollectionStartEvent, line: int) -> None:
        mapping = isinstance(event, yaml.MappingStartEvent)
        expected = _TAG + ("map" if mapping else "seq")
        if event.tag not in (None, "!", expected):
            raise YamlProblem(f"line {line}: tag {event.tag} is not supported")
        if len(self._stack) >= MAX_DEPTH:
            raise YamlProblem(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        self._count(1, line)
        self._stack.append(_Frame({} if mapping else [], event.anchor, line))

    def _count(self, size: int, line: int) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            raise YamlProblem(
                f"line {line}: more than {MAX_NODES:,} values once aliases are expanded"
            )

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> Any:
        if event.tag is None:
            if not event.implicit[0]:
                return event.value  # quoted: always text
            cached = self._plain.get(event.value, _MISSING)
            if cached is not _MISSING and not (cached is _MergeKey and not self._expecting_key()):
                return cached
            value = self._resolve(event, line)
            if len(self._plain) < 4096 and len(event.value) <= 64:
                self._plain[event.value] = value
            return value
        return self._resolve(event, line)

    def _resolve(self, event: yaml.ScalarEvent, line: int) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            resolve: Any = self._resolver.resolve
            tag = (
                _TAG + "str"
                if tag == "!"
                else resolve(yaml.ScalarNode, event.value, event.implicit)
            )
            if tag in _NUMBER_TAGS and ":" in event.value:
                # YAML 1.1 reads `07:30` as the base-60 integer 450; YAML 1.2 dropped that and
                # so do we: a time of day written plainly stays the text the user meant.
                tag = _TAG + "str"
        if tag == _MERGE and self._expecting_key():
            return _MergeKey
        if tag not in _SCALAR_TAGS:
            raise YamlProblem(f"line {line}: tag {tag} is not supported")
        if tag == _TAG + "str":
            return event.value
        if tag in _NUMBER_TAGS and len(event.value) > MAX_NUMBER_CHARS:
            raise YamlProblem(f"line {line}: a number longer than {MAX_NUMBER_CHARS} characters")
        construct = SafeConstructor.yaml_constructors[tag]
        try:
            return construct(self._constructor, yaml.ScalarNode(tag, event.value))
        except (ValueError, OverflowError, yaml.YAMLError):
            raise YamlProblem(f"line {line}: not a valid {tag.removeprefix(_TAG)}") from None

    def _expecting_key(self) -> bool:
        top = self._stack[-1] if self._stack else None
        return isinstance(top, _Frame) and isinstance(top.value, dict) and top.key is None

    def _add(
        self, value: Any, size: int, anchor: str | None, line: int, *, counted: bool = False
    ) -> None:
        """Place a finished value; `size` is its expanded node count (`counted`: already in)."""
        if not counted:
            self._count(size, line)
        if anchor is not None:
            self._anchors[anchor] = (value, size)
        if not self._stack:
            self.result = value
            return
        top = self._stack[-1]
        top.size += size
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key is None:
            self._take_key(top, value, line)
        else:
            key, top.key = top.key, None
            if key is _MergeKey:
                top.merges.append(_merge_sources(value, line))
            else:
                top.value[key] = value

    def _take_key(self, top: _Frame, value: Any, line: int) -> None:
        if value is _MergeKey:
            top.key = value
            return
        number = self._number_keys and isinstance(value, int) and not isinstance(value, bool)
        if not isinstance(value, str) and not number:
            allowed = "text or an integer" if self._number_keys else "text"
            raise YamlProblem(f"line {line}: a mapping key must be {allowed}, not {_kind(value)}")
        if value in top.value:
            raise YamlProblem(f"line {line}: key {quote(str(value))} appears twice in one mapping")
        if len(top.value) >= MAX_MAPPING_KEYS:
            raise YamlProblem(f"line {line}: more than {MAX_MAPPING_KEYS} keys in one mapping")
        top.key, top.key_line = value, line


class _MergeKeyType(str):
    """Marks a ``<<`` key (a str so the frame's key slot keeps one type)."""


_MergeKey: Any = _MergeKeyType("<<")


def _merge_sources(value: Any, line: int) -> list[dict[str, Any]]:
    sources = value if isinstance(value, list) else [value]
    if not all(isinstance(source, dict) for source in sources):
        raise YamlProblem(f"line {line}: `<<` must merge a mapping or a list of mappings")
    return sources


def _merged(explicit: dict[str, Any], merges: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """YAML merge: explicit keys win, then earlier merge sources over later ones."""
    result: dict[str, Any] = {}
    for sources in reversed(merges):
        for source in reversed(sources):
            result.update(source)
    result.update(explicit)
    if len(result) > MAX_MAPPING_KEYS:
        raise YamlProblem(f"more than {MAX_MAPPING_KEYS} keys in one mapping after `<<`")
    return result


def _locations(
    text: str, prefixes: set[tuple[int | str, ...]]
) -> Iterator[tuple[tuple[int | str, ...], int]]:
    """(path, line) of every node whose path is in `prefixes`, skipping other subtrees."""
    # Each frame: [path, is_mapping, next index, pending key]; `skip` counts ignored depth.
    stack: list[list[Any]] = []
    skip = 0
    for event in _events(text):
        line = event.start_mark.line + 1 if event.start_mark else 0
        start = isinstance(event, yaml.CollectionStartEvent)
        end = isinstance(event, yaml.CollectionEndEvent)
        node = start or isinstance(event, yaml.ScalarEvent | yaml.AliasEvent)
        if skip:
            skip += 1 if start else -1 if end else 0
            if not skip and stack:
                if stack[-1][1] and stack[-1][3] is _COMPLEX_KEY:
                    stack[-1][3] = ("?", line)  # now its value follows
                else:
                    _advance(stack)
            continue
        if end:
            stack.pop()
            if stack:
                _advance(stack)
            continue
        if not node:
            continue
        if not stack:
            path: tuple[int | str, ...] = ()
        else:
            top = stack[-1]
            if top[1] and top[3] is None:  # a key of a mapping
                if start:
                    top[3], skip = _COMPLEX_KEY, 1  # not part of any path
                else:
                    top[3] = (event.value if isinstance(event, yaml.ScalarEvent) else "", line)
                continue
            if top[1]:
                path = (*top[0], top[3][0])
                line = top[3][1]
            else:
                path = (*top[0], top[2])
        if path not in prefixes:
            if start:
                skip = 1
            elif stack:
                _advance(stack)
            continue
        yield path, line
        if start:
            stack.append([path, isinstance(event, yaml.MappingStartEvent), 0, None])
        elif stack:
            _advance(stack)


_COMPLEX_KEY = ("", 0)


def _advance(stack: list[list[Any]]) -> None:
    top = stack[-1]
    if top[1]:
        top[3] = None
    else:
        top[2] += 1


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def _kind(value: Any) -> str:
    kinds = {dict: "a mapping", list: "a list", type(None): "null", bool: "a boolean"}
    return kinds.get(type(value), "a number")


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
