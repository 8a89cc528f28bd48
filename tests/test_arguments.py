"""phylocl.arguments: whole and real numbers (Python or NumPy, never a bool), the path probe of a string, paths too
long for a file name, and the names messages give arguments (Python keywords, or a command's options)."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.arguments import (command_line_names, existing_path, is_real, is_whole, on_command_line, option,
                               positive_int, positive_real, setting, usable_path, whole)
from phylocl.errors import InputError


def test_whole_numbers_are_ints_of_python_or_numpy_but_not_bools():
    assert all(is_whole(v) for v in (0, -3, np.int64(2), np.uint8(1)))
    assert not any(is_whole(v) for v in (True, np.True_, 2.0, np.float32(1), "1", None))
    assert whole("k", np.int32(4)) == 4 and type(whole("k", np.int32(4))) is int
    with pytest.raises(ValueError, match="k must be a whole number, got bool True"):
        whole("k", True)


def test_real_numbers_exclude_bools():
    assert all(is_real(v) for v in (1, 0.5, np.float32(0.1), np.int8(3), float("nan")))
    assert not any(is_real(v) for v in (False, np.bool_(True), "0.1", None, 1j))


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None])
def test_positive_int_names_the_argument(value):
    with pytest.raises(ValueError, match=f"batch_size must be an int >= 1, got {value!r}"):
        positive_int("batch_size", value)


def test_positive_int_optional_takes_none():
    assert positive_int("chunk_size", None, optional=True) is None
    assert positive_int("chunk_size", np.int64(3), optional=True) == 3
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1 or None, got 0"):
        positive_int("chunk_size", 0, optional=True)


@pytest.mark.parametrize("value", [0, -0.5, float("inf"), float("nan"), True, "1"])
def test_positive_real_refuses_what_is_not_a_finite_number_above_0(value):
    with pytest.raises(ValueError, match="max_scale must be a finite number > 0"):
        positive_real("max_scale", value)
    assert positive_real("max_scale", np.float32(2.5)) == 2.5


def test_existing_path_is_false_for_strings_no_file_can_be_named(tmp_path):
    f = tmp_path / "q.fasta"
    f.write_text(">a\nMKV\n")
    assert existing_path(f) and existing_path(str(f), file=True) and existing_path(tmp_path)
    assert not existing_path(tmp_path, file=True) and not existing_path(tmp_path / "none")
    for not_a_path in ("MKV" * 100, "a\0b", "x/" * 3000, 5, None):  # too long, NUL, over PATH_MAX, not a str
        assert not existing_path(not_a_path)  # Path.exists() raised OSError for the first and third


def test_usable_path_refuses_a_name_too_long_for_a_file_naming_the_argument(tmp_path):
    long = tmp_path / ("x" * 300)
    with pytest.raises(InputError) as err:
        usable_path("index", long)
    assert err.value.path == str(long) and err.value.message.startswith("index: file name too long: one part of it "
                                                                        "is 300 bytes long")
    with pytest.raises(InputError, match="index: file name too long: the path is 5,999 bytes long"):
        usable_path("index", "x/" * 3000)  # over PATH_MAX, each part short
    with pytest.raises(InputError, match="é" * 130):  # bytes, not letters: 260 bytes in 130 letters
        usable_path("labels", "é" * 130)
    with command_line_names(), pytest.raises(InputError) as err:  # the command's message starts with the path
        usable_path("index", str(long))
    assert str(err.value) == f"{long}: file name too long: " + err.value.message.split(": ", 1)[1]
    for fine in (tmp_path / "missing", "~/x" + "y" * 200, "a\0b"):  # missing, NUL: each caller's own message
        assert usable_path("path", fine) == type(tmp_path)(fine).expanduser()


def test_arguments_are_named_as_keywords_or_as_the_commands_options():
    assert [option(n) for n in ("threads", "filter_pvalue", "k", "out_format", "overlap")] == [
        "threads", "filter_pvalue", "k", "out_format", "overlap"]
    assert setting("out_format", "tsv") == "out_format='tsv'" and setting("align", False) == "align=False"
    assert not on_command_line()
    with command_line_names():
        assert on_command_line()
        assert [option(n) for n in ("threads", "filter_pvalue", "k", "out_format", "overlap")] == [
            "--threads", "--filter-pvalue", "-k", "--format", "--window-overlap"]
        assert setting("out_format", "tsv") == "--format tsv" and setting("align", False) == "--no-align"
        assert setting("strict", True) == "--strict" and setting("device", "cpu") == "--device cpu"
        assert setting("out_format", "6 qseqid sseqid") == "--format '6 qseqid sseqid'"  # as a shell takes it
        assert setting("model", "kmer:3") == "--model kmer:3"
    with pytest.raises(RuntimeError), command_line_names():  # left on an error too
        raise RuntimeError
    assert not on_command_line() and option("word_budget") == "word_budget"
