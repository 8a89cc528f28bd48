"""Shared test fixtures (kept small): the shared-data folder and tiny datasets built in memory or in tmp_path."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

# <repo>/../shared/data: real datasets that are not shipped with the repository (tests skip without them).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared datasets folder, or skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def make_dataset():
    """Build an OrthologDataset from ``{family: [sequence, ...]}`` (ids ``<family>_<k>``)."""
    from phylocl.data.alphabet import get_alphabet
    from phylocl.data.dataset import OrthologDataset

    def build(families: dict[str, list[str]], *, alphabet: str = "protein", metadata=None, trees=None):
        ids, seqs, fams = [], [], []
        for fam, members in families.items():
            for k, s in enumerate(members):
                ids.append(f"{fam}_{k}")
                seqs.append(s)
                fams.append(fam)
        return OrthologDataset(ids=ids, sequences=seqs, families=fams, alphabet=get_alphabet(alphabet),
                               metadata=metadata or {}, trees=trees or {})

    return build


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (MASTER_PORT of the multi-process tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (exit code, stdout, stderr)`` of ``phylocl`` run in-process; stderr never has a traceback."""
    from phylocl.cli import main

    def call(*argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit:  # argparse's refusals (usage, exit 2)
            code = exit.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return call


@pytest.fixture
def benchmark_script(monkeypatch):
    """``benchmark_script(NAME)``: ``benchmarks/NAME.py`` loaded as a module (benchmark scripts import their
    siblings, so ``benchmarks/`` goes on ``sys.path`` for the test)."""
    import importlib.util

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_bench", bench / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def ablation_script(benchmark_script):
    """``benchmarks/ablation.py`` loaded as a module."""
    return benchmark_script("ablation")
