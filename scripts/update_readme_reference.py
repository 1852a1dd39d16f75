"""Rewrite the config reference table in docs/config.md from the schema (tests check it matches).

Usage: .venv/bin/python scripts/update_readme_reference.py
"""

from pathlib import Path

from lnexp.config import reference_markdown

page = Path(__file__).resolve().parent.parent / "docs" / "config.md"
text = page.read_text(encoding="utf-8")
start = text.index("| key | default | description |")
end = text.index("\n\n", start) + 1
page.write_text(text[:start] + reference_markdown() + text[end:], encoding="utf-8")
print(f"updated {page}")
