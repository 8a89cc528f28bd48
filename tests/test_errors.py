"""phylocl.errors: the one-line words of an OSError, out of file descriptors included."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from pathlib import Path

from phylocl.errors import InputError, open_files_message, os_error_message

REPO = Path(__file__).resolve().parents[1]


def test_input_error_reads_path_line_column():
    assert str(InputError("bad", path="a.fa", line=3, column=7)) == "a.fa:3:7: bad"
    assert str(InputError("bad", path="a.fa", column=7)) == "a.fa: bad"  # a column without a line is dropped
    assert os_error_message(OSError(errno.EACCES, "Permission denied")) == "permission denied"


def test_an_os_error_in_phylocls_own_words_keeps_their_case():
    """A checkpoint that could not be written (CheckpointWriteError, an OSError with a message only) was printed
    lowercased: ``--resume --out /data/MyRun`` named /data/myrun, another folder."""
    from phylocl.workflows.train_checkpoints import CheckpointWriteError

    message = "/data/MyRun/checkpoints/last.ckpt: cannot write; continue with --resume --out /data/MyRun"
    assert os_error_message(CheckpointWriteError(message)) == message
    assert os_error_message(OSError(errno.EIO, "Input/output error")) == "input/output error"


def test_open_files_words_take_what_failed_and_another_way_out():
    words = open_files_message(errno.ENFILE, to=" to start 2 worker processes", advice="or use fewer --threads")
    assert words == ("too many open files on this system (its file table is full) to start 2 worker processes; "
                     "try again when fewer files are open, or use fewer --threads")
    assert open_files_message(errno.EIO) is None


def test_the_open_files_limit_is_named_when_no_descriptor_is_left():
    """The limit is read when every descriptor is taken: ``resource`` (an extension module, a file to open) was
    imported only then, failed, and the words said `ulimit -n`: unknown."""
    code = ("import os\nfrom phylocl.errors import os_error_message\nfds = []\ntry:\n"
            "    while True:\n        fds.append(os.open(os.devnull, os.O_RDONLY))\n"
            "except OSError as err:\n    words = os_error_message(err)\n"
            "for fd in fds:\n    os.close(fd)\nprint(words)\n")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=low_limit)
    assert done.returncode == 0, done.stderr
    assert "`ulimit -n`: 64)" in done.stdout, done.stdout
