"""A `Document` as GitHub-flavoured Markdown for a CI job summary (e.g. appended to
`$GITHUB_STEP_SUMMARY`): the headline and the tables, no figures (job summaries strip
embedded images), no config or environment (the HTML page has them)."""

from __future__ import annotations

from lnexp.report.document import Bullets, Code, Document, Fields, Figure, Table, Text

MARK = {"pass": "✅ ", "fail": "❌ ", "warn": "⚠️ ", "": ""}


def _cell(text: str) -> str:
    """A table cell: pipes escaped, line breaks flattened."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


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
        out += ["", f"_{t.note}_"]
    return out


def render(doc: Document) -> str:
    """The summary: title and status, headline, then each summary section's tables."""
    lines = [f"### {doc.title} — {doc.status}", ""]
    for t in doc.headline:
        lines += [f"{MARK[t.tone]}{t.text}", ""]
    lines += [f"Folder: `{doc.path}`", ""]
    left_out = bool(doc.figures())
    for section in doc.sections:
        if not section.summary:
            left_out = True
            continue
        lines += [f"#### {section.title}", ""]
        for b in section.blocks:
            if isinstance(b, Table):
                lines += [*_table(b), ""]
            elif isinstance(b, Text):
                lines += [f"{MARK[b.tone]}{b.text}", ""]
            elif isinstance(b, Bullets):
                lines += [*(f"- {x}" for x in b.items), ""]
            elif isinstance(b, Fields):
                lines += [*(f"- {k}: {v}" for k, v in b.items), ""]
            elif isinstance(b, Figure | Code):
                left_out = True
    if left_out:
        lines += [f"_Figures, the resolved config and the environment: `lnexp report "
                  f"{doc.path}` writes them into one HTML page._", ""]
    return "\n".join(lines)
