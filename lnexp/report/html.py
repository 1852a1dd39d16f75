"""A `Document` as one self-contained HTML page: inline CSS, figures as base64 PNG, no script,
no external URL; the only links are in-page anchors and relative links to the child folders'
own pages (a compare's norms, a sweep's trials), which `lnexp report` writes beside them.
A Content-Security-Policy (`default-src 'none'`) tells the browser to fetch
nothing at all, so a page opened from a CI artifact cannot reach the network even if a future
change slipped in a link to a stylesheet or an image.

Layout: one column up to 80rem wide; every table sits in a box that scrolls sideways on a
narrow screen, with its row labels kept in view; figures shrink to the width, and a click on
one (a plain link to its own anchor, the CSS `:target` rule, no script) shows it at full
size in a box that scrolls.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from html import escape
from pathlib import Path
from urllib.parse import quote

from lnexp import __version__
from lnexp.report.document import (
    Block,
    Bullets,
    Code,
    Details,
    Document,
    Fields,
    Figure,
    Section,
    Table,
    Text,
)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

STATUS_TONE = {"completed": "pass", "partial": "warn", "running": "warn", "unknown": "warn",
               "failed": "fail", "interrupted": "fail"}

CSS = """
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --soft: #f6f8fa; --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --link: #0969da; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 80rem; padding: 1rem clamp(0.75rem, 3vw, 2rem) 3rem;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); background: #fff; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0.5rem 0 0.25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; padding-bottom: 0.25rem;
  border-bottom: 1px solid var(--line); }
p { margin: 0.5rem 0; }
.path { color: var(--muted); font-size: 0.85rem; overflow-wrap: anywhere; margin: 0; }
.badge { display: inline-block; font-size: 0.8rem; font-weight: 600; vertical-align: middle;
  padding: 0.1rem 0.5rem; border-radius: 1rem; border: 1px solid currentColor; }
.headline p { padding: 0.4rem 0.75rem; border-left: 4px solid var(--line);
  background: var(--soft); border-radius: 0 4px 4px 0; }
.pass { color: var(--pass); } .fail { color: var(--fail); } .warn { color: var(--warn); }
.headline p.pass { background: var(--pass-bg); border-color: var(--pass); }
.headline p.fail { background: var(--fail-bg); border-color: var(--fail); }
.headline p.warn { background: var(--warn-bg); border-color: var(--warn); }
.headline p.pass, .headline p.fail, .headline p.warn { color: var(--fg); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem;
  margin: 0.75rem 0; font-size: 0.9rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
nav { font-size: 0.9rem; margin: 1rem 0; }
nav a { color: var(--link); margin-right: 0.9rem; white-space: nowrap; }
.scroll { overflow-x: auto; margin: 0.5rem 0; }
table { border-collapse: collapse; font-size: 0.875rem; font-variant-numeric: tabular-nums;
  border: 1px solid var(--line); }
th, td { padding: 0.3rem 0.7rem; text-align: left; vertical-align: top;
  border-bottom: 1px solid var(--line); white-space: nowrap; }
thead th { background: var(--soft); font-weight: 600; }
tbody tr:last-child > * { border-bottom: 0; }
tr.group th { background: var(--soft); font-weight: 600; font-size: 0.8rem; color: var(--muted);
  text-align: left; white-space: normal; padding-top: 0.45rem; }
tr.group th span { position: sticky; left: 0.7rem; }
th[scope=row] { font-weight: normal; white-space: normal; min-width: 7rem; max-width: 16rem;
  position: sticky; left: 0; background: #fff; box-shadow: 1px 0 0 var(--line); }
thead th:first-child { position: sticky; left: 0; z-index: 1; box-shadow: 1px 0 0 var(--line); }
td.num, th.num { text-align: right; }
td.num span { white-space: nowrap; }
thead th:first-child { white-space: normal; }
@media (max-width: 36rem) {
  table.fit td.num { white-space: normal; }
  th, td { padding: 0.3rem 0.5rem; }
}
tr.fail > * { background: var(--fail-bg); }
td.wrap { white-space: normal; min-width: 16rem; }
.caption { font-weight: 600; font-size: 0.9rem; margin: 1rem 0 0.25rem; }
.note { color: var(--muted); font-size: 0.85rem; }
ul { padding-left: 1.25rem; }
li { margin: 0.25rem 0; }
figure { margin: 1rem 0 1.5rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 4px; }
figure .frame { overflow-x: auto; }
figure:target img { max-width: none; }
figure:target { scroll-margin-top: 0.5rem; }
.size a { color: var(--link); }
figure .fit { display: none; }
figure:target .fit { display: inline; }
figure:target .full { display: none; }
.lead { font-size: 1.02rem; border-left: 4px solid var(--link); padding: 0.1rem 0 0.1rem 0.9rem;
  margin: 0.75rem 0; }
.lead p { margin: 0.4rem 0; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; font-weight: 600; font-size: 0.95rem; padding: 0.25rem 0; }
a { color: var(--link); }
code { background: var(--soft); border-radius: 3px; padding: 0 0.2rem; font-size: 0.9em; }
pre code { background: none; padding: 0; font-size: inherit; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 0.35rem; }
figcaption b { color: var(--fg); }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; line-height: 1.4; }
code, pre { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, monospace; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.8rem; }
@media print { .scroll { overflow: visible; } nav { display: none; } }
""".strip()


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk; None if `data` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _numbers(cell: str) -> str:
    """A numeric cell whose numbers never break inside, while a range may wrap after its `…`
    on a narrow screen (`-0.1496 …` over `0.2457`)."""
    parts = re.split(r"(?<= …| /| ±) ", cell)
    return " ".join(f"<span>{escape(p)}</span>" for p in parts)


_TICKS = re.compile(r"`([^`\n]+)`")


def _inline(text: str) -> str:
    """Text escaped, with `code` in backticks as <code> (the backticks never show)."""
    return _TICKS.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text))


def _href(child: Path, page: Path | None, folder: Path) -> str:
    """A relative link from the page to the child folder's report.html."""
    start = page.parent if page is not None else folder
    rel = os.path.relpath(child / "report.html", start)
    return quote(Path(rel).as_posix())


def _table(t: Table, page: Path | None = None, folder: Path = Path(".")) -> str:
    numeric = t.numeric_columns()
    parts = []
    if t.caption:
        parts.append(f'<p class="caption">{escape(t.caption)}</p>')
    head = "".join(f'<th scope="col"{" class=num" if i and numeric[i] else ""}>{escape(c)}</th>'
                   for i, c in enumerate(t.columns))
    body = []
    for r, row in enumerate(t.rows):
        tone = t.tones[r] if r < len(t.tones) else ""
        if len(row) == 1 and len(t.columns) > 1:
            body.append(f'<tr class="group"><th scope="rowgroup" colspan="{len(t.columns)}">'
                        f"<span>{escape(row[0])}</span></th></tr>")
            continue
        cells = []
        for i, cell in enumerate(row):
            if i == 0:
                link = t.links[r] if r < len(t.links) else None
                label = (f'<a href="{escape(_href(link, page, folder))}">{escape(cell)}</a>'
                         if link is not None else escape(cell))
                cells.append(f'<th scope="row">{label}</th>')
                continue
            if numeric[i]:
                cells.append(f"<td class=num>{_numbers(cell)}</td>")
                continue
            cls = " class=wrap" if len(cell) > 60 else ""
            cells.append(f"<td{cls}>{escape(cell)}</td>")
        body.append(f"<tr{f' class={tone}' if tone == 'fail' else ''}>{''.join(cells)}</tr>")
    fit = ' class="fit"' if len(t.columns) <= 3 else ""
    parts.append(f'<div class="scroll"><table{fit}><thead><tr>{head}</tr></thead>'
                 f'<tbody>{"".join(body)}</tbody></table></div>')
    if t.note:
        parts.append(f'<p class="note">{escape(t.note)}</p>')
    return "\n".join(parts)


def _figure(f: Figure) -> str:
    from lnexp.store import reading

    try:
        data = reading.read_bytes(f.path, reading.LIMITS["figure"])
    except reading.UnreadableFile as exc:
        return f'<p class="warn">{escape(f.path.name)}: cannot read ({escape(exc.why)})</p>'
    size = png_size(data)
    if size is None:
        return f'<p class="warn">{escape(f.path.name)}: not a PNG file, left out</p>'
    b64 = base64.b64encode(data).decode("ascii")
    anchor = "fig-" + "".join(c if c.isalnum() else "-" for c in f.path.stem.lower())
    caption = f"<b>{escape(f.path.name)}</b>" + (f" · {_inline(f.caption)}" if f.caption else "")
    size_links = (f'<span class="size"> · <a class="full" href="#{anchor}">full size '
                  f'({size[0]} × {size[1]} px)</a><a class="fit" href="#figures">fit to the '
                  f"width</a></span>")
    return (f'<figure id="{anchor}"><div class="frame"><a href="#{anchor}">'
            f'<img src="data:image/png;base64,{b64}" width="{size[0]}" height="{size[1]}" '
            f'alt="{escape(f.title)} figure ({escape(f.path.name)})"></a></div>'
            f"<figcaption>{caption}{size_links}</figcaption></figure>")


def _block(b: Block, page: Path | None = None, folder: Path = Path(".")) -> str:
    if isinstance(b, Text):
        return f'<p{f" class={b.tone}" if b.tone else ""}>{_inline(b.text)}</p>'
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table(b, page, folder)
    if isinstance(b, Details):
        inner = "\n".join(_block(x, page, folder) for x in b.blocks)
        return (f"<details{' open' if b.open else ''}><summary>{_inline(b.summary)}</summary>\n"
                f"{inner}\n</details>")
    if isinstance(b, Figure):
        return _figure(b)
    if isinstance(b, Fields):
        return _fields(b.items)
    if isinstance(b, Code):
        return f'<p class="caption">{escape(b.title)}</p><pre><code>{escape(b.text)}</code></pre>'
    raise TypeError(f"unknown block {type(b).__name__}")


def _fields(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def _section(s: Section, page: Path | None, folder: Path) -> str:
    inner = "\n".join(_block(b, page, folder) for b in s.blocks)
    return f'<section id="{s.anchor}">\n<h2>{escape(s.title)}</h2>\n{inner}\n</section>'


def render(doc: Document, generated: str = "", page: Path | None = None) -> str:
    """The page. `generated` (e.g. a timestamp) goes into the footer; left empty, the page is
    a pure function of the folder's files. `page` is where it will be written (default:
    FOLDER/report.html): the links to the child folders' pages are relative to it."""
    tone = STATUS_TONE.get(doc.status, "warn")
    headline = "".join(f'<p{f" class={t.tone}" if t.tone else ""}>{_inline(t.text)}</p>'
                       for t in doc.headline)
    lead = ('<div class="lead">' + "".join(f"<p>{_inline(p)}</p>" for p in doc.lead)
            + "</div>" if doc.lead else "")
    nav = "\n".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in doc.sections)
    footer = (f"Made by lnexp {escape(__version__)} (<code>lnexp report</code>) from the files "
              f"in {escape(str(doc.path))}" + (f", {escape(generated)}" if generated else "")
              + ".")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="lnexp {escape(__version__)}">
<title>{escape(doc.title)} · {escape(doc.status)}</title>
<style>
{CSS}
</style>
</head>
<body>
<header>
<h1>{escape(doc.title)} <span class="badge {tone}">{escape(doc.status)}</span></h1>
<p class="path">{escape(str(doc.path))}</p>
</header>
{lead}
<div class="headline">{headline}</div>
{_fields(doc.facts)}
<nav>{nav}</nav>
{chr(10).join(_section(s, page, doc.path) for s in doc.sections)}
<footer>{footer}</footer>
</body>
</html>
"""

