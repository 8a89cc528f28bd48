"""The CLI's logging setup: records go to the stderr of the moment, even after an earlier stderr was closed."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phylocl.console import configure_logging


class _Stream(io.StringIO):
    """Like a real file (and pytest's captures): flushing a closed stream raises."""

    def flush(self):
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        super().flush()


def test_log_lines_follow_stderr_after_the_old_one_is_closed(monkeypatch):
    monkeypatch.setattr(logging, "raiseExceptions", True)
    first = _Stream()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("demo")
    log = logging.getLogger("phylocl.demo")
    log.warning("one")
    assert first.getvalue() == "phylocl demo: one\n"
    first.close()  # e.g. a test's captured stream, gone by the next test
    second = _Stream()
    monkeypatch.setattr(sys, "stderr", second)
    log.warning("two")  # setStream() flushed the closed stream first
    assert second.getvalue() == "phylocl demo: two\n"
    configure_logging("demo", quiet=True)
    log.info("hidden")
    assert second.getvalue() == "phylocl demo: two\n"
    assert sum(type(h).__name__ == "_StderrHandler" for h in logging.getLogger("phylocl").handlers) == 1


def test_handlers_are_replaced_and_quiet_hides_info(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    configure_logging("demo")
    configure_logging("demo")  # replaces, does not stack handlers
    log = logging.getLogger("phylocl.workflows.demo")
    log.info("one")
    assert err.getvalue() == "phylocl demo: one\n"
    configure_logging("demo", quiet=True)
    log.info("hidden")
    log.warning("shown")
    assert err.getvalue().splitlines()[-1] == "phylocl demo: shown" and "hidden" not in err.getvalue()
    configure_logging("demo")  # leave the default level for other tests


@pytest.mark.parametrize("preset, expected", [(None, "4"), ("9", "9")])
def test_the_cli_shortens_openblas_spin_before_numpy_loads(preset, expected):
    """``phylocl`` sets ``OPENBLAS_THREAD_TIMEOUT`` (OpenBLAS reads it when NumPy loads) before anything imports
    NumPy, unless the user set it: OpenBLAS's threads then sleep after a product instead of holding the cores that
    the search's own threads need next."""
    code = ("import os, sys\nfrom phylocl.cli import main\ntry:\n    main(['search', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), 'numpy' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == f"{expected} False"
