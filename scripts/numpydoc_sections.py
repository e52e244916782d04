"""Rewrite Google-style docstring sections (``Args:``, ``Returns:``, ...) as numpydoc sections.

A migration aid for branches written before the project settled on numpydoc (ruff's ``D``
rules with the numpy convention, and ``tests/unit/test_architecture.py``)::

    .venv/bin/python scripts/numpydoc_sections.py FILE.py ...

``Args``/``Attributes``/``Raises`` entries ``name: text`` become ``name`` with the text below
it; ``Returns`` take the function's return annotation as their type line. Read the diff
afterwards: prose that is not an entry is only re-indented.
"""

import re
import sys
from pathlib import Path

TITLES = {
    "Args": "Parameters",
    "Arguments": "Parameters",
    "Parameters": "Parameters",
    "Returns": "Returns",
    "Return": "Returns",
    "Yields": "Yields",
    "Raises": "Raises",
    "Attributes": "Attributes",
    "Note": "Notes",
    "Notes": "Notes",
    "Example": "Examples",
    "Examples": "Examples",
}
ENTRY_SECTIONS = {"Parameters", "Raises", "Attributes"}
HEADER = re.compile(r"^(\s*)(" + "|".join(TITLES) + r"):\s*$")
ENTRY = re.compile(
    r"^(\*{0,2}[A-Za-z_][\w.]*(?:, \*{0,2}[A-Za-z_]\w*)*)(?: \(([^)]*)\))?:(?: (.*))?$"
)


def indent_of(line: str) -> int:
    """Leading spaces of a line."""
    return len(line) - len(line.lstrip(" "))


def return_annotation(out: list[str]) -> str | None:
    """The return annotation of the def whose docstring is being converted."""
    k = len(out) - 1
    while k >= 0 and '"""' not in out[k]:
        k -= 1
    k -= 1
    if k < 0:
        return None
    m = re.search(r"->\s*(.+?):\s*$", out[k])
    return m.group(1) if m else None


def convert(text: str) -> tuple[str, int]:
    """The text with its Google sections rewritten, and how many there were."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    count = 0
    while i < len(lines):
        m = HEADER.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        h = len(m.group(1))
        title = TITLES[m.group(2)]
        # content: following lines that are blank or indented deeper than the header
        j = i + 1
        body: list[str] = []
        while j < len(lines):
            line = lines[j]
            if line.strip() == "":
                # blank: part of the section only if more deeper content follows
                k = j
                while k < len(lines) and lines[k].strip() == "":
                    k += 1
                if (
                    k < len(lines)
                    and indent_of(lines[k]) > h
                    and not lines[k].strip().startswith('"""')
                ):
                    body.extend(lines[j:k])
                    j = k
                    continue
                break
            if indent_of(line) <= h or line.strip().startswith('"""'):
                break
            body.append(line)
            j += 1
        if not body:
            out.append(lines[i])
            i += 1
            continue
        count += 1
        if out and out[-1].strip() != "" and not out[-1].strip().endswith('"""'):
            out.append("")
        out.append(" " * h + title)
        out.append(" " * h + "-" * len(title))
        entry_indent = min(indent_of(b) for b in body if b.strip())
        if title in ("Returns", "Yields"):
            ann = return_annotation(out)
            if ann:
                out.append(" " * h + ann)
                for b in body:
                    out.append(
                        " " * (h + 4 + indent_of(b) - entry_indent) + b.strip() if b.strip() else ""
                    )
                i = j
                continue
        for b in body:
            if not b.strip():
                out.append("")
                continue
            ind = indent_of(b)
            content = b.strip()
            if title in ENTRY_SECTIONS and ind == entry_indent:
                em = ENTRY.match(content)
                if em:
                    name, typ, desc = em.group(1), em.group(2), em.group(3)
                    out.append(" " * h + (f"{name} : {typ}" if typ else name))
                    if desc:
                        out.append(" " * (h + 4) + desc)
                    continue
            # prose or continuation: keep relative indentation, entries at h, text at h+4
            if title in ENTRY_SECTIONS:
                new = h + 4 + (ind - entry_indent - 4) if ind > entry_indent else h + 4
                new = max(new, h + 4)
            else:
                new = h + (ind - entry_indent)
            out.append(" " * new + content)
        i = j
    return "\n".join(out), count


def main() -> None:
    """Rewrite the files named on the command line in place."""
    total = 0
    for arg in sys.argv[1:]:
        path = Path(arg)
        text = path.read_text(encoding="utf-8")
        new, count = convert(text)
        if count:
            path.write_text(new, encoding="utf-8")
            total += count
            print(f"{path}: {count}")
    print("sections:", total)


if __name__ == "__main__":
    main()
