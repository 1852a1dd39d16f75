"""`lnexp report`: one self-contained HTML page, or a Markdown job summary, for a run, compare,
sweep or inspect folder, made from the files in it.

    doc = report.read_folder("outputs/default/20261125-223533-5752c5")
    page = report.to_html(doc)        # str; the CLI writes it
    summary = report.to_markdown(doc)

Pure: reads the folder, returns text; never prints, never writes. Needs neither torch nor
matplotlib.
"""

from __future__ import annotations

from lnexp.report.document import Document
from lnexp.report.folders import BUILDERS, folder_kind, read_folder
from lnexp.report.html import render as to_html
from lnexp.report.markdown import render as to_markdown

KINDS = tuple(BUILDERS)

__all__ = ["KINDS", "Document", "folder_kind", "read_folder", "to_html", "to_markdown"]
