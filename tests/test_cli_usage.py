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
