"""What a report says, independent of how it is written: a title, a few facts, and sections of
plain blocks (text, bullets, tables, figures, code). `folders.py` builds one from a folder;
`html.py` and `markdown.py` write it out. Renderers compute nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# A tone colours a line or a table row; the words carry the meaning too (pass/FAIL, yes/no),
# so nothing depends on colour alone.
Tone = Literal["", "pass", "fail", "warn"]
# A cell that reads as numbers: 0.25, -4.4e-08, 1,024, n/a, inf, joined by … / ±.
_NUMBER = r"(?:[-+]?(?:\d[\d,]*\.?\d*(?:e[-+]?\d+)?|inf)|n/a)"
NUMERIC = re.compile(rf"^{_NUMBER}(?:\s*(?:…|/|±)\s*{_NUMBER})*$")


@dataclass
class Text:
    """One paragraph."""

    text: str
    tone: Tone = ""


@dataclass
class Bullets:
    """A plain list of sentences (e.g. the explanation lines printed under the tables)."""

    items: list[str]


@dataclass
class Table:
    """Rows of text cells; the first column labels the row, and a row of one cell is a group
    heading for the rows under it. Columns whose cells mostly read as numbers are
    right-aligned by the renderers."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    tones: list[Tone] = field(default_factory=list)  # one per row, or empty
    note: str = ""  # a line under the table, e.g. "first 1,000 of 10,000 trials"
    # one per row, or empty: a child folder whose report the row's label links to
    links: list[Path | None] = field(default_factory=list)

    def numeric_columns(self) -> list[bool]:
        """Per column: most of its cells read as numbers (such a column is right-aligned)."""
        out = []
        for i in range(len(self.columns)):
            cells = [r[i].strip() for r in self.rows if i < len(r) and len(r) > 1]
            real = [c for c in cells if c and c != "n/a"]
            out.append(sum(bool(NUMERIC.match(c)) for c in real) > len(real) / 2)
        return out


@dataclass
class Figure:
    """A PNG from the folder, embedded by the HTML renderer and left out of Markdown."""

    title: str
    path: Path
    caption: str = ""


@dataclass
class Fields:
    """Label: value pairs (env.json, the run's dates and command)."""

    items: list[tuple[str, str]]


@dataclass
class Code:
    """A file shown verbatim (config.yaml, a sweep's definition)."""

    title: str
    text: str


@dataclass
class Details:
    """Blocks folded under a one-line summary (`<details>` in HTML): closed for what needs no
    attention (completed trials), open for what does (failed ones)."""

    summary: str
    blocks: list[Block]
    open: bool = False


Block = Text | Bullets | Table | Figure | Fields | Code | Details


@dataclass
class Section:
    """A titled part of the page; `summary=False` keeps it out of the Markdown summary."""

    title: str
    blocks: list[Block]
    summary: bool = True

    @property
    def anchor(self) -> str:
        """An HTML id for the section, from its title."""
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class Document:
    """The whole report of one folder."""

    title: str
    kind: str  # run, compare, sweep
    path: Path
    status: str  # run.json status: completed, partial, failed, interrupted, running
    # what the experiment is about (its config's header comment), the page's first lines
    lead: list[str] = field(default_factory=list)
    headline: list[Text] = field(default_factory=list)  # the verdict, right under the lead
    facts: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def blocks(self) -> list[Block]:
        """Every block, in page order, folded ones included."""
        out: list[Block] = []
        todo: list[Block] = [b for s in self.sections for b in s.blocks]
        while todo:
            b = todo.pop(0)
            out.append(b)
            if isinstance(b, Details):
                todo[:0] = b.blocks
        return out

    def figures(self) -> list[Figure]:
        """Every figure, in page order."""
        return [b for b in self.blocks() if isinstance(b, Figure)]

    def children(self) -> list[Path]:
        """The child folders (a compare's norms, a sweep's trials) this page links to."""
        return [p for b in self.blocks() if isinstance(b, Table) for p in b.links if p]
