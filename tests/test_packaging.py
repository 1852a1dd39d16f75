"""The wheel pip users install: the shipped configs inside as presets (from configs/, the one
source), py.typed, the console script. Installing it into a fresh venv and running
`lnexp run tutorial` from an empty folder is too slow for the suite here (~60 s for pip alone
on 2 loaded cores): README says how, and it was checked by hand (see the i20 report)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT


@pytest.mark.slow
def test_wheel_ships_the_configs_as_presets(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(ROOT), "-w", str(tmp_path)], check=True, capture_output=True,
                   cwd=tmp_path)
    [wheel] = tmp_path.glob("lnexp-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        shipped = {Path(n).name: z.read(n) for n in names
                   if n.startswith("lnexp/shipped_configs/")}
        assert shipped == {p.name: p.read_bytes() for p in CONFIGS.glob("*.yaml")}
        assert "lnexp/py.typed" in names
        assert "lnexp/cli.py" not in names and "lnexp/cli/__init__.py" in names
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "lnexp = lnexp.entry:main" in z.read(entry).decode()


def test_help_offers_shell_completion(invoke) -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "--install-completion" in result.stdout
