"""Output places refused before any work (issue 14): devices, pipes, folders, an input (same inode), a file of an
input dataset folder, a parent that is a file, /proc; unwritable places are one line too. The refused path is left
exactly as it was."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from phylocl.cli import main
from phylocl.outputs import check_output_dir, check_output_file

FASTA = ">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n>c\nGSHMLEDPVV\n>d\nGSHMLEDPAV\n"
LABELS = "sequence_id\tfamily_id\na\tF1\nb\tF1\nc\tF2\nd\tF2\n"


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "sequences.fasta").write_text(FASTA)
    (d / "labels.tsv").write_text(LABELS)
    return d


def _commands(d: Path, out: str):
    fa = str(d / "sequences.fasta")
    return {
        "embed": ["embed", "--fasta", fa, "--model", "kmer:2", "-o", out, "--quiet"],
        "embed-data": ["embed", "--data", str(d), "--model", "kmer:2", "-o", out, "--quiet"],
        "search": ["search", "--query", fa, "--db", fa, "--model", "kmer:2", "-o", out, "--quiet"],
        "evaluate": ["evaluate", "--data", str(d), "--model", "kmer:2", "--per-family", out, "--quiet"],
    }


def _place(case, tmp_path, d):
    if case == "device":
        return "/dev/null", "not a regular file"
    if case == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return str(tmp_path / "pipe"), "not a regular file"
    if case == "folder":
        (tmp_path / "folder").mkdir()
        return str(tmp_path / "folder"), "output is a directory"
    if case == "input-hardlink":
        os.link(d / "sequences.fasta", tmp_path / "same.fa")
        return str(tmp_path / "same.fa"), "output would overwrite an input file"
    if case == "dataset-file":
        return str(d / "labels.tsv"), "output would overwrite an input file"
    if case == "parent-is-file":
        (tmp_path / "plain").write_text("x")
        return str(tmp_path / "plain" / "out"), "is a file, not a folder"
    return "/proc/phylocl-out", "under /proc"


CASES = ["device", "fifo", "folder", "input-hardlink", "dataset-file", "parent-is-file", "proc"]


@pytest.mark.parametrize("command", ["embed", "embed-data", "search", "evaluate"])
@pytest.mark.parametrize("case", CASES)
def test_refused_output_places_are_left_alone(tmp_path, capsys, inputs, command, case):
    out, needle = _place(case, tmp_path, inputs)
    if case == "dataset-file" and command in ("embed", "search"):
        pytest.skip("labels.tsv is not an input of a FASTA-only command")
    before = os.stat(out, follow_symlinks=False) if os.path.lexists(out) else None
    contents = Path(out).read_bytes() if before is not None and stat.S_ISREG(before.st_mode) else None
    code = main(_commands(inputs, out)[command])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err and "Traceback" not in err, err
    if before is not None:
        after = os.stat(out, follow_symlinks=False)
        assert (after.st_ino, stat.S_IFMT(after.st_mode)) == (before.st_ino, stat.S_IFMT(before.st_mode))
        if contents is not None:
            assert Path(out).read_bytes() == contents
    assert (inputs / "sequences.fasta").read_text() == FASTA


@pytest.mark.parametrize("command", ["embed", "embed-data", "search", "evaluate"])
def test_a_link_to_an_open_file_under_proc_is_refused_and_left_a_link(tmp_path, capsys, inputs, command):
    """`-o /dev/stdout > file`: /dev/stdout -> /proc/self/fd/1 -> the file. The link passed as a regular file and
    the output was renamed onto it, replacing the link (as root: the system's /dev/stdout) with a regular file."""
    with open(tmp_path / "stream.txt", "w") as stream:  # standard output sent to a file, as `> stream.txt`
        link = tmp_path / "stdout"
        os.symlink(f"/proc/self/fd/{stream.fileno()}", link)  # what /dev/stdout is, without touching /dev
        code = main(_commands(inputs, str(link))[command])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "under /proc" in err and "-o -" in err, err
        assert link.is_symlink() and os.readlink(link) == f"/proc/self/fd/{stream.fileno()}"
    assert (tmp_path / "stream.txt").read_text() == ""


@pytest.mark.parametrize("command", ["embed", "search", "evaluate"])
def test_an_output_that_is_a_symbolic_link_is_written_through(tmp_path, capsys, inputs, command):
    """`-o hits.tsv` where hits.tsv links to a file elsewhere: written there (as blastp -out, diamond -o and a
    shell's > write), the link kept; it was replaced by a new file, the target left with the previous output."""
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / "elsewhere" / "out.x"
    target.write_text("previous\n")
    link = tmp_path / "out.x"
    os.symlink(target, link)
    assert main(_commands(inputs, str(link))[command]) == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() != b"previous\n" and target.stat().st_size > 0


def test_a_dangling_link_into_a_missing_folder_is_refused_before_the_work(tmp_path, capsys, inputs):
    os.symlink(tmp_path / "missing" / "out.tsv", tmp_path / "out.tsv")
    assert main(_commands(inputs, str(tmp_path / "out.tsv"))["search"]) == 2
    assert "whose folder does not exist" in capsys.readouterr().err and not (tmp_path / "missing").exists()


def test_atomic_path_refuses_to_replace_a_link_under_proc(tmp_path):
    from phylocl.atomic import atomic_path
    from phylocl.errors import InputError

    with open(tmp_path / "stream.txt", "w") as stream:
        os.symlink(f"/proc/self/fd/{stream.fileno()}", tmp_path / "stdout")
        with pytest.raises(InputError, match="under /proc"), atomic_path(tmp_path / "stdout") as tmp:
            tmp.write_text("x")
        assert (tmp_path / "stdout").is_symlink() and sorted(os.listdir(tmp_path)) == ["stdout", "stream.txt"]


@pytest.mark.parametrize("command", ["embed", "search", "evaluate"])
def test_an_output_ending_with_a_slash_is_refused(tmp_path, capsys, inputs, command):
    """`-o results/`: Path() dropped the slash and a file named results was written (a shell's > results/ fails)."""
    assert main(_commands(inputs, str(tmp_path / "results") + "/")[command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names a folder (it ends with '/')" in err, err
    assert not (tmp_path / "results").exists()


def test_unwritable_place_is_one_line(tmp_path, capsys, inputs, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    for command, argv in _commands(inputs, str(tmp_path / "out.x")).items():
        assert main(argv) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot write: permission denied" in err, err


def test_check_output_dir_refuses_files_devices_and_inputs(tmp_path, inputs):
    from phylocl.errors import InputError

    (tmp_path / "f").write_text("x")
    for path, needle in [(tmp_path / "f", "output folder is a file"), ("/dev/null", "is not a folder"),
                         ("/proc/x", "under /proc"), ("/sys/x", "under /sys"), (tmp_path / "f" / "run", "is a file")]:
        with pytest.raises(InputError, match=needle):
            check_output_dir(path)
    with pytest.raises(InputError, match="is the input"):
        check_output_dir(inputs, inputs=[inputs])
    assert check_output_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert check_output_file(tmp_path / "new.tsv", inputs=[inputs]) == tmp_path / "new.tsv"


def test_the_model_file_is_an_input_too(tmp_path, capsys, inputs):
    from phylocl.models.registry import build_encoder

    enc = build_encoder("gmlp-tiny", alphabet="protein", max_len=32)
    model = enc.save(tmp_path / "run" / "encoder.pt")
    before = model.read_bytes()
    fa = str(inputs / "sequences.fasta")
    for argv in (["embed", "--fasta", fa, "--model", str(model), "-o", str(model), "--quiet"],
                 ["embed", "--fasta", fa, "--model", str(model.parent), "-o", str(model), "--quiet"],
                 ["search", "--query", fa, "--db", fa, "--model", str(model), "-o", str(model), "--quiet"],
                 ["evaluate", "--data", str(inputs), "--model", str(model.parent), "--per-family", str(model),
                  "--quiet"]):
        assert main(argv) == 2
        assert "output would overwrite an input file" in capsys.readouterr().err
    assert model.read_bytes() == before


REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "datasets" / "example-mini-mit" / "protein"
FOLDER_COMMANDS = {
    "train": lambda out: ["train", "--data", str(EXAMPLE), "--out", out, "--quiet"],
    "compare": lambda out: ["compare", "--config", str(REPO / "configs" / "compare-small-batch.yaml"), "--data",
                            str(EXAMPLE), "--out", out, "--quiet"],
    "simulate": lambda out: ["simulate", "--families", "3", "--members", "3", "--length", "20", "-o", out,
                             "--overwrite"],
}


@pytest.mark.parametrize("command", sorted(FOLDER_COMMANDS))
@pytest.mark.parametrize("case, needle", [("file", "output folder is a file"), ("device", "is not a folder"),
                                          ("proc", "under /proc"), ("parent-is-file", "is a file, not a folder")])
def test_output_folders_refused_in_one_line(tmp_path, capsys, command, case, needle):
    (tmp_path / "plain").write_text("x")
    out = {"file": str(tmp_path / "plain"), "device": "/dev/null", "proc": "/proc/phylocl-out",
           "parent-is-file": str(tmp_path / "plain" / "sub")}[case]
    assert main(FOLDER_COMMANDS[command](out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err
    assert (tmp_path / "plain").read_text() == "x" and stat.S_ISCHR(os.stat("/dev/null").st_mode)
