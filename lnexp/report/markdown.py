"""A `Document` as GitHub-flavoured Markdown for a CI job summary (e.g. appended to
`$GITHUB_STEP_SUMMARY`): the headline and the tables, no figures (job summaries strip
embedded images), no config or environment (the HTML page has them)."""

from __future__ import annotations

import re

from lnexp.report.document import Bullets, Code, Details, Document, Fields, Figure, Table, Text

MARK = {"pass": "✅ ", "fail": "❌ ", "warn": "⚠️ ", "": ""}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # what could open an HTML tag or comment


def _text(text: object) -> str:
    """Text from the folder's files as Markdown shows it: every `<` that could open an HTML
    tag as &lt; (GitHub renders inline HTML in a job summary, so `<script>` or `<img onerror>`
    in a name would be markup; `<= 0.01` stays readable), control characters as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", _TAG.sub("&lt;", str(text)))


def _line(text: object) -> str:
    """_text on one line (headings, bullets)."""
    return _text(text).replace("\r", " ").replace("\n", " ")


def _cell(text: str) -> str:
    """A table cell: HTML escaped, pipes escaped, line breaks flattened."""
    return _line(text).replace("\\", "\\\\").replace("|", "\\|")


def _table(t: Table) -> list[str]:
    numeric = t.numeric_columns()
    out = [f"**{_cell(t.caption)}**", ""] if t.caption else []
    out.append("| " + " | ".join(_cell(c) for c in t.columns) + " |")
    out.append("| " + " | ".join("---:" if i and numeric[i] else "---"
                                 for i in range(len(t.columns))) + " |")
    for r, row in enumerate(t.rows):
        tone = t.tones[r] if r < len(t.tones) else ""
        if len(row) == 1 and len(t.columns) > 1:
            out.append(f"| **{_cell(row[0])}** |" + " |" * (len(t.columns) - 1))
            continue
        cells = [_cell(c) for c in row]
        if tone == "fail" and cells:
            cells[0] = f"**{cells[0]}**"
        out.append("| " + " | ".join(cells) + " |")
    if t.note:
        out += ["", f"_{_line(t.note)}_"]
    return out


def render(doc: Document) -> str:
    """The summary: title and status, headline, then each summary section's tables."""
    lines = [f"### {_line(doc.title)} — {_line(doc.status)}", ""]
    for p in doc.lead:
        lines += [f"> {_line(p)}", ""]
    for t in doc.headline:
        lines += [f"{MARK[t.tone]}{_line(t.text)}", ""]
    lines += [f"Folder: {_cell(str(doc.path))}", ""]
    left_out = bool(doc.figures())
    for section in doc.sections:
        if not section.summary:
            left_out = True
            continue
        lines += [f"#### {_line(section.title)}", ""]
        blocks = list(section.blocks)
        while blocks:
            b = blocks.pop(0)
            if isinstance(b, Details):  # a job summary shows everything unfolded
                blocks[:0] = b.blocks
                continue
            if isinstance(b, Table):
                lines += [*_table(b), ""]
            elif isinstance(b, Text):
                lines += [f"{MARK[b.tone]}{_line(b.text)}", ""]
            elif isinstance(b, Bullets):
                lines += [*(f"- {_line(x)}" for x in b.items), ""]
            elif isinstance(b, Fields):
                lines += [*(f"- {_line(k)}: {_line(v)}" for k, v in b.items), ""]
            elif isinstance(b, Figure | Code):
                left_out = True
    if left_out:
        lines += [f"_Figures, the resolved config and the environment: lnexp report "
                  f"{_cell(str(doc.path))} writes them into one HTML page._", ""]
    return "\n".join(lines)
