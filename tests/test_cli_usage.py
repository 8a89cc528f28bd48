"""The command line's own mistakes: an unknown option is refused with its command's usage, exit 2."""

from __future__ import annotations

import pytest

from phylocl.cli import main


@pytest.mark.parametrize("argv, usage, unknown", [
    (["models", "--bogus"], "usage: phylocl models ", "--bogus"),
    (["inspect", "x.fasta", "--k", "3"], "usage: phylocl inspect ", "--k 3"),
])
def test_an_unknown_option_names_its_command_and_shows_its_usage(capsys, argv, usage, unknown):
    """``phylocl models --bogus`` showed the top-level usage (``phylocl [-h] [--version] COMMAND ...``), which does
    not say what ``models`` takes."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    out = capsys.readouterr().err
    assert out.startswith(usage) and f"phylocl {argv[0]}: error: unrecognized arguments: {unknown}\n" in out


@pytest.mark.parametrize("argv, name", [
    (["search", "--query", "", "--db", "db.fa", "-o", "hits.tsv"], "--query"),  # was "output would overwrite an
    (["embed", "--fasta", "", "-o", "x.npz"], "--fasta"),  # input file" / ".: is a directory, expected a FASTA file"
    (["search", "--query", "q.fa", "--db", "db.fa", "-o", " "], "-o/--output"),
    (["inspect", ""], "path"),
    (["evaluate", "--data", ""], "--data"),
    (["train", "--config", "c.yaml", "--out", "r", "--data", "d1", ""], "--data"),  # nargs="+"
    (["index", "--verify", ""], "--verify"),  # read the working folder as the index: "meta.json is missing"
    (["evaluate", "--data", "d.fa", "--per-family", ""], "--per-family"),  # ".: output is a directory"
])
def test_an_empty_path_is_refused_with_the_usage(capsys, tmp_path, monkeypatch, argv, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    out = capsys.readouterr().err
    assert out.startswith(f"usage: phylocl {argv[0]} ")
    assert f"error: argument {name}: an empty string is not a file or folder name" in out
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_subcommand_of_the_parser_is_run_by_the_cli():
    """The parser (phylocl.cli_parser) and the dispatch table (phylocl.cli.COMMANDS) name the same commands."""
    import argparse

    from phylocl.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS) and len(COMMANDS) == 10
