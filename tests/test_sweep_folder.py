"""sweep.json plus its journal (lnexp/sweep/folder.py): trial events are appended, not
rewritten; loading folds them in (a torn last line is skipped); write() folds and removes the
journal; folding twice changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from lnexp.sweep.folder import JOURNAL, SweepFolder


def _folder(path: Path, n: int = 3) -> SweepFolder:
    doc = {"schema_version": 1, "kind": "sweep", "status": "running", "sessions": [],
           "trials": [{"index": i, "run_dir": f"t{i:03d}", "status": "pending", "error": None,
                       "seconds": None, "attempts": 0, "hash": "h"} for i in range(n)]}
    folder = SweepFolder(path, doc)
    folder.write()
    return folder


def test_events_go_to_the_journal_and_load_folds_them(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = (tmp_path / "sweep.json").read_text()
    folder.update(0, status="running", error=None)
    folder.update(0, status="completed", error=None, seconds=0.5)
    folder.update(1, status="running", error=None)
    folder.update(1, status="failed", error="boom", seconds=0.1)
    assert (tmp_path / "sweep.json").read_text() == before  # not rewritten per event
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0]) == {"index": 0, "status": "running",
                                                        "error": None, "attempts": 1}
    # a parent killed mid-write leaves a torn last line: skipped
    with (tmp_path / JOURNAL).open("a") as f:
        f.write('{"index": 2, "status": "compl')
    loaded = SweepFolder.load(tmp_path)
    assert [t["status"] for t in loaded.trials] == ["completed", "failed", "pending"]
    assert loaded.trials[1]["error"] == "boom" and loaded.trials[0]["attempts"] == 1
    assert loaded.counts()["completed"] == 1


def test_write_folds_the_journal_and_folding_twice_is_harmless(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    folder.update(2, status="running", error=None)
    folder.update(2, status="completed", error=None)
    journal = (tmp_path / JOURNAL).read_text()
    folder.finish("completed")
    assert not (tmp_path / JOURNAL).exists()
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert doc["trials"][2]["status"] == "completed" and doc["counts"]["completed"] == 1
    # a crash between the rename of sweep.json and the unlink of the journal
    (tmp_path / JOURNAL).write_text(journal)
    again = SweepFolder.load(tmp_path)
    assert again.trials == doc["trials"]
