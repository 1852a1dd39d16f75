"""The config reader's bounds (lnexp/config/loading.py): size, nesting, alias expansion,
duplicate keys, each refused with one `source:line` problem before anything big is built."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from lnexp.config import loading
from lnexp.config.loading import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_VALUES, load_yaml, read_raw
from lnexp.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_yaml(text, "c.yaml")
    return info.value.problems


def test_plain_yaml_reads_as_safe_load_does():
    data, lines = load_yaml("a: 1\nb:\n  c: [1, 2.5, x]\n  d: &d {e: 1}\nf: *d\n<<: {g: 2}\n",
                            "c.yaml")
    assert data == {"a": 1, "b": {"c": [1, 2.5, "x"], "d": {"e": 1}}, "f": {"e": 1}, "g": 2}
    assert lines == {"a": 1, "b": 2, "b.c": 3, "b.d": 4, "b.d.e": 4, "f": 5}


def test_unsafe_tags_are_still_refused():
    (line,) = problems("a: !!python/object/apply:os.system ['true']\n")
    assert "YAML tag refused" in line


@pytest.mark.parametrize("text", [
    "a: " + "[" * 2000 + "]" * 2000,
    "a: " + "{b: " * 2000 + "1" + "}" * 2000,
    "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
])
def test_deep_nesting_is_one_line_not_a_recursion_error(text: str):
    (line,) = problems(text)
    assert line.startswith("c.yaml:") and f"more than {MAX_DEPTH} levels" in line


def test_nesting_up_to_the_bound_is_fine():
    depth = MAX_DEPTH - 1  # the top-level mapping is a level too
    data, _ = load_yaml("a: " + "[" * depth + "]" * depth, "c.yaml")
    assert data is not None


def test_aliases_nesting_through_each_other_count_as_depth():
    text = "a0: &a0 " + "[" * 20 + "1" + "]" * 20 + "\n"
    text += "".join(f"a{i}: &a{i} " + "[" * 20 + f"*a{i - 1}" + "]" * 20 + "\n"
                    for i in range(1, 5))
    (line,) = problems(text)
    assert "aliases nest more than" in line


def test_alias_bomb_is_refused_from_the_node_graph():
    # "billion laughs": 10 levels of 10 aliases each = 10^10 values, a few hundred bytes
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    text += "".join(f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n"
                    for p, c in zip("abcdefghi", "bcdefghij", strict=True))
    start = time.monotonic()
    (line,) = problems(text)
    assert f"more than {MAX_VALUES:,} values" in line and line.startswith("c.yaml:")
    assert time.monotonic() - start < 2


def test_alias_bomb_in_data_values_is_refused():
    row = ", ".join(["1.5"] * 100)
    text = f"data:\n  values: [&r [{row}], " + ", ".join(["*r"] * 20_000) + "]\n"
    (line,) = problems(text)
    assert line.startswith("c.yaml:2:") and "aliases expand" in line


def test_modest_aliases_are_fine():
    data, _ = load_yaml("a: &a [1, 2]\nb: [*a, *a, *a]\n", "c.yaml")
    assert data["b"] == [[1, 2]] * 3


def test_recursive_alias_is_refused():
    (line,) = problems("a: &a [1, *a]\n")
    assert "refers to the collection it is in" in line


@pytest.mark.parametrize("text, where, key", [
    ("model:\n  norm: ln\n  norm: bn\n", "c.yaml:3:", "model.norm"),
    ("seed: 1\nname: a\nseed: 2\n", "c.yaml:3:", "seed"),
    ("expect:\n  post_norm.global.mean.abs_max: {le: 1, le: 2}\n", "c.yaml:2:",
     "expect.post_norm.global.mean.abs_max.le"),
    ("model: {norm: ln, norm: bn}\n", "c.yaml:1:", "model.norm"),
])
def test_duplicate_keys_name_both_lines(text: str, where: str, key: str):
    (line,) = problems(text)
    assert line.startswith(f"{where} {key}: duplicate key (first at line ")


def test_every_duplicate_is_reported():
    assert len(problems("a: 1\na: 2\nb: {c: 1, c: 2}\n")) == 2


def test_same_text_different_type_is_not_a_duplicate():
    data, _ = load_yaml("1: a\n'1': b\n", "c.yaml")
    assert data == {1: "a", "1": "b"}


def test_a_file_over_the_cap_is_refused_without_reading_it(tmp_path: Path):
    p = tmp_path / "big.yaml"
    with p.open("wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: nothing to read
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        read_raw(p)


def test_an_endless_device_is_cut_at_the_cap():
    with pytest.raises(ConfigError, match="/dev/zero: larger than 1 MiB"):
        read_raw("/dev/zero")


def test_a_fifo_without_writer_does_not_hang(tmp_path: Path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="the file is empty"):
        read_raw(fifo)


def test_a_fifo_with_a_writer_is_read(tmp_path: Path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as f:
            f.write("seed: 3\n")

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.2)  # the reader may open before or after the writer: both work
    raw, lines = read_raw(fifo)
    writer.join()
    assert raw == {"seed": 3} and lines == {"seed": 1}


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.yaml", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: d / ("x" * 300 + ".yaml"), r"cannot read \(File name too long\)"),
    (lambda d: d / "nodir" / "c.yaml", "no such file"),
])
def test_bad_paths(tmp_path: Path, make, message: str):
    with pytest.raises(ConfigError, match=message):
        read_raw(make(tmp_path))


def test_not_utf8(tmp_path: Path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_raw(p)


def test_override_values_have_the_same_bounds():
    with pytest.raises(ConfigError, match=r"--set 'data.values=.*nested more than"):
        loading.parse_override("data.values=" + "[" * 100 + "]" * 100)


def test_a_number_past_pythons_digit_limit_is_one_config_error() -> None:
    """int() refuses literals over 4,300 digits with a ValueError: one ConfigError naming the
    file, not an internal error (exit 70) from the run, report or check that read it."""
    with pytest.raises(ConfigError) as exc:
        load_yaml("seed: " + "9" * 5000 + "\n", "c.yaml")
    assert str(exc.value).startswith("c.yaml: a number in it is too long to read")
