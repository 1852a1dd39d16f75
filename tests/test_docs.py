"""The README stays true: config reference, commands and the two set-up commands."""

from __future__ import annotations

from lnexp.cli import app
from lnexp.config import reference_markdown
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_config_reference_matches_the_schema():
    assert reference_markdown() in README


def test_readme_starts_with_the_two_setup_commands():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make run", "make test"]


def test_every_command_is_documented():
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        names += [f"{name} {sub}" for sub in subs] if subs else [name]
    for name in names:
        assert f"lnexp {name}" in README, f"`lnexp {name}` is not in the README"


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
