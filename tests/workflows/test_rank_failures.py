"""raise_together: a failure of any rank stops every rank at the same point; rank 0 raises the one to report, the
others raise errors marked as reported by rank 0, which the command line does not print."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from phylocl.errors import InputError
from phylocl.workflows.rank_failures import mark_reported_by_rank_zero, raise_together, reported_by_rank_zero


class _Bug(Exception):
    def __init__(self, *, what):
        super().__init__(f"broken {what}")


def _worker(r, port, out_dir):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=r, world_size=2)
    cases = {  # what each rank met, per case
        "none": (None, None),
        "rank1": (None, InputError("record 'c': bad letter", path="in.fa", line=6, column=3)),
        "both": (InputError("other"), OSError(errno.ENOSPC, "No space left on device", "/x/last.ckpt")),
        "os": (None, OSError(errno.ENOSPC, "No space left on device", "/x/last.ckpt")),
        "bug": (None, _Bug(what="thing")),
    }
    seen = {}
    try:
        for name, errors in cases.items():
            try:
                raise_together(errors[r])
                seen[name] = None
            except Exception as err:
                seen[name] = [type(err).__name__, str(err), reported_by_rank_zero(err), err is errors[r]]
        with open(os.path.join(out_dir, f"rank{r}.json"), "w") as fh:
            json.dump(seen, fh)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_every_rank_raises_and_rank_zero_raises_the_one_to_report(tmp_path, free_port):
    torch.multiprocessing.spawn(_worker, args=(free_port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["none"] is None and r1["none"] is None
    # rank 1's error, rebuilt on rank 0 (same type and text, printed there); rank 1 raises its own, marked
    assert r0["rank1"] == ["InputError", "in.fa:6:3: record 'c': bad letter", False, False]
    assert r1["rank1"] == ["InputError", "in.fa:6:3: record 'c': bad letter", True, True]
    # both failed: each raises its own, rank 0's is the one reported
    assert r0["both"] == ["InputError", "other", False, True]
    assert r1["both"] == ["OSError", "[Errno 28] No space left on device: '/x/last.ckpt'", True, True]
    assert r0["os"] == ["OSError", "[Errno 28] No space left on device: '/x/last.ckpt'", False, False]
    # an error the command line does not print in one line reaches rank 0 as a RuntimeError naming it
    assert r0["bug"] == ["RuntimeError", "the process of rank 1 failed: _Bug: broken thing", False, False]
    assert r1["bug"] == ["_Bug", "broken thing", False, True]  # not marked: its traceback is printed there


def test_without_a_process_group_the_error_is_raised_as_it_is():
    raise_together(None)
    err = InputError("bad")
    with pytest.raises(InputError) as caught:
        raise_together(err)
    assert caught.value is err and not reported_by_rank_zero(err)


def test_a_rewrapped_error_keeps_the_mark_of_the_one_it_replaces():
    marked, plain = mark_reported_by_rank_zero(InputError("a")), InputError("b")
    assert reported_by_rank_zero(mark_reported_by_rank_zero(OSError("c"), like=marked))
    assert not reported_by_rank_zero(mark_reported_by_rank_zero(OSError("d"), like=plain))


@pytest.mark.parametrize("marked", [False, True])
def test_the_command_line_prints_an_error_rank_zero_reports_only_there(monkeypatch, capsys, tmp_path, marked):
    import phylocl.cli as cli

    def failing(args):
        err = InputError("record 'c': bad letter", path="in.fa")
        raise mark_reported_by_rank_zero(err) if marked else err

    monkeypatch.setitem(cli.COMMANDS, "inspect", failing)  # main() runs the command through COMMANDS
    code = cli.main(["inspect", str(tmp_path)])
    err = capsys.readouterr().err
    assert (code, err) == ((0, "") if marked else (2, "phylocl inspect: error: in.fa: record 'c': bad letter\n"))
