"""``phylocl embed --devices 2``: two CPU processes (gloo, Lightning DDP prediction loop) write the same file as one."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

AA = "ACDEFGHIKLMNPQRSTVWY"


def _worker(r, port, fasta, model, out, report):
    """One rank, launched the way torchrun would: the environment names it, Lightning launches nothing."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", NODE_RANK="0",
                      LOCAL_RANK=str(r), RANK=str(r))
    torch.set_num_threads(1)
    from phylocl.workflows.embed import embed

    res = embed(out=out, model=model, fasta=fasta, shard_size=4, buffer_size=3, batch_size=2, device="cpu",
                devices=2, progress=False)
    with open(os.path.join(report, f"rank{r}.json"), "w") as fh:
        json.dump({"rank": res.rank, "n": res.n}, fh)


@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_two_processes_write_the_same_file_as_one(tmp_path, free_port):
    rng = np.random.default_rng(2)
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">s{i}\n{''.join(rng.choice(list(AA), size=int(rng.integers(5, 90))))}\n"
                             for i in range(19)))  # 5 shards of 4: rank 0 gets 0, 2, 4; rank 1 gets 1, 3
    from phylocl.models.registry import build_encoder

    torch.manual_seed(0)  # an encoder, so the ranks also move a model to their device
    model = str(build_encoder("gmlp-tiny", max_len=32).save(tmp_path / "enc.pt"))
    from phylocl.retrieval.embedding_files import load_embeddings
    from phylocl.workflows.embed import embed

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: with more threads the kernels may sum in another order (1e-7 apart)
    try:
        one = embed(out=tmp_path / "one.npz", model=model, fasta=fasta, shard_size=4, buffer_size=3, batch_size=2,
                    device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    two = tmp_path / "two.npz"
    torch.multiprocessing.spawn(_worker, args=(free_port, str(fasta), model, str(two), str(tmp_path)),
                                nprocs=2, join=True)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert reports == [{"rank": 0, "n": 19}, {"rank": 1, "n": 0}]
    a, b = load_embeddings(one.path), load_embeddings(two)
    assert b.ids == a.ids == [f"s{i}" for i in range(19)]
    np.testing.assert_array_equal(b.embeddings, a.embeddings)
    assert two.read_bytes() == one.path.read_bytes() and not (tmp_path / "two.npz.shards").exists()


def test_more_gpus_than_the_machine_has_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    """``--device cuda --devices 2`` on a one-GPU machine ended in Lightning's MisconfigurationException traceback.
    A one-GPU machine is emulated: CUDA reported available, Lightning counting one device."""
    from lightning.fabric.accelerators import cuda as fabric_cuda
    from lightning.pytorch.accelerators import cuda as lightning_cuda

    from phylocl.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(lightning_cuda.CUDAAccelerator, "is_available", staticmethod(lambda: True))
    for module in (fabric_cuda, lightning_cuda):
        monkeypatch.setattr(module, "num_cuda_devices", lambda: 1)
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWLL\n")
    out = tmp_path / "e.npz"
    assert main(["embed", "--fasta", str(fasta), "-o", str(out), "--model", "kmer:2", "--device", "cuda",
                 "--devices", "2", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("phylocl embed: error: invalid --devices/--num-nodes settings: You requested gpu")
    assert "only has: [0]" in captured.err and captured.err.count("\n") == 1 and captured.out == "", captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.fasta"]


@pytest.mark.timeout(60)  # before the fix, the first process blocked opening the pipe (no writer)
@pytest.mark.parametrize("argument", ["fasta", "labels"])
def test_a_pipe_is_refused_before_any_process_starts(tmp_path, argument):
    """``embed --fasta <(zcat x.fa.gz) --devices 2``: rank 0 read the pipe, the rank Lightning started found
    '/dev/fd/63: no such file or directory' and the run was killed (exit 137)."""
    from phylocl.errors import InputError
    from phylocl.workflows.embed import embed

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # never opened: the check only stats it
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWLL\n")
    kwargs = {"fasta": fifo} if argument == "fasta" else {"data": fasta, "labels": fifo}
    with pytest.raises(InputError, match=rf"^{fifo}: {argument} is a pipe or device, read once; with "
                                         "devices/num_nodes every process reads the whole input"):
        embed(out=tmp_path / "e.npz", model="kmer:2", devices=2, device="cpu", progress=False, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "q.fasta"]


def test_a_rank_that_meets_bad_input_leaves_the_other_ranks_shard_folder(tmp_path, monkeypatch):
    """A bad record met by rank 0 of ``embed --devices 2`` removed ``OUT.shards`` while rank 1 was still writing
    there, and rank 1 printed a second, misleading error ('.shard-000002.npz....spool: no such file or directory').
    Rank 0's failure is stood in for; the folder it shares is kept (a later run discards it if the input changed)."""
    from phylocl.errors import InputError
    from phylocl.workflows import embed as embed_mod

    def fail(embedder, items, out, settings, with_labels, sizes, **kwargs):
        embed_mod.ShardFolder(out=out, settings=settings)  # as the ranks' setup makes it
        (embed_mod.Path(f"{out}.shards") / "shard-000001.npz").write_bytes(b"another rank's")
        raise InputError("record 'bad': letter(s) '1' not in the protein alphabet", path="in.fasta", line=362)

    monkeypatch.setattr(embed_mod, "_predict_distributed", fail)
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWLL\n")
    with pytest.raises(InputError, match="record 'bad'"):
        embed_mod.embed(out=tmp_path / "e.npz", model="kmer:2", fasta=fasta, devices=2, device="cpu", progress=False)
    assert (tmp_path / "e.npz.shards" / "shard-000001.npz").read_bytes() == b"another rank's"
    assert not (tmp_path / "e.npz").exists()


@pytest.mark.multiprocess
@pytest.mark.timeout(200)
def test_a_bad_record_under_two_processes_is_reported_once(tmp_path):
    """``embed --devices 2`` of a FASTA with a bad record: every rank reads the whole input and met it, and each
    printed it (two identical lines). Rank 0 is held 7 s here, as when it embeds its shards up to a bad record that
    rank 1 only reads past: rank 1 exited 2 first, and Lightning's launcher (which looks every 5 s) killed rank 0,
    exit 137, the line printed by rank 1 only and followed by Lightning's "Forcefully terminating" line."""
    from ddp_cli import run_ranks

    patch = """
from phylocl.workflows import embed_distributed
_write = embed_distributed.write_shards
def _held(*args, **kwargs):
    if kwargs["rank"] == 0:
        time.sleep(7)
    return _write(*args, **kwargs)
embed_distributed.write_shards = _held
"""
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKVLAAGIVG\n>b\nMSTAPQRWLL\n>c\nMK1LAAG\n>d\nMKVLAAGIVG\n")
    out = tmp_path / "e.npz"
    code, err, _ = run_ranks(tmp_path, patch, ["embed", "--fasta", fasta, "-o", out, "--model", "kmer:2", "--device",
                                               "cpu", "--devices", "2", "--shard-size", "1", "--quiet"])
    message = f"phylocl embed: error: {fasta}:6:3: record 'c': letter(s) '1' not in the protein alphabet"
    assert code == 2 and err.count(message) == 1 and err.count("\n") == 1, err[-3000:]
    assert not out.exists() and not (tmp_path / ".e.npz.lock").exists()
