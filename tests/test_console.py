"""The CLI's process settings: phylocl log lines on the stderr of the moment, quiet levels, replaced handlers."""

from __future__ import annotations

import io
import logging
import sys

from phylocl.console import configure_logging


def test_log_lines_follow_sys_stderr_even_after_it_was_closed(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("demo")
    configure_logging("demo")  # replaces, does not stack handlers
    log = logging.getLogger("phylocl.workflows.demo")
    log.info("one")
    assert first.getvalue() == "phylocl demo: one\n"
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("two")
    assert second.getvalue() == "phylocl demo: two\n"
    configure_logging("demo", quiet=True)
    log.info("hidden")
    log.warning("shown")
    assert second.getvalue().splitlines()[-1] == "phylocl demo: shown" and "hidden" not in second.getvalue()
    configure_logging("demo")  # leave the default level for other tests
