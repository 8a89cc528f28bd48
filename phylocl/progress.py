"""A small progress counter for long command-line jobs (no dependencies): items done, rate, elapsed time.

On a terminal the status line is rewritten in place (``\\r``) at most every ``interval`` seconds; when the stream
is a file or a pipe (a batch job's log) a new line is written at most every ``log_interval`` seconds instead, so
logs stay short. :meth:`Progress.close` always writes the final line.

Example::

    with Progress(label="embedding", total=len(seqs), unit="sequences") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))
    # stderr: embedding: 10,000/10,000 sequences (100%), 812/s, 12.3 s
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``3.2 s``, ``4 min 05 s`` or ``2 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Count items and report progress on ``stream`` (default ``sys.stderr``).

    Args:
        label: what is being done (``"embedding"``).
        total: expected number of items, or ``None`` when unknown (streamed input).
        unit: item name in the status line.
        enabled: ``False`` counts silently (``--quiet``).
        stream: where to write; default ``sys.stderr`` looked up at construction.
        interval: least seconds between in-place updates on a terminal.
        log_interval: least seconds between lines when ``stream`` is not a terminal.
        clock: time source in seconds (tests pass a fake one).
    """

    def __init__(self, *, label: str, total: int | None = None, unit: str = "items", enabled: bool = True,
                 stream: TextIO | None = None, interval: float = 0.2, log_interval: float = 30.0,
                 clock=time.perf_counter) -> None:
        if total is not None and total < 0:
            raise ValueError(f"total must be >= 0 or None, got {total}")
        if interval < 0 or log_interval < 0:
            raise ValueError("interval and log_interval must be >= 0")
        self.label, self.total, self.unit, self.enabled = label, total, unit, bool(enabled)
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.interval = interval if self.tty else log_interval
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.closed = False
        self._last_report = self.start
        self._reported = -1  # items done at the last line written
        self._width = 0

    @property
    def elapsed(self) -> float:
        """Seconds since construction."""
        return self.clock() - self.start

    def status(self) -> str:
        """The current status line (without line ending)."""
        elapsed = self.elapsed
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = f", {self.done / elapsed:,.0f}/s" if elapsed > 0 else ""
        return f"{self.label}: {count} {self.unit}{pct}{rate}, {format_duration(elapsed)}"

    def _write(self, final: bool) -> None:
        line = self.status()
        self._reported = self.done
        if self.tty:
            pad = " " * max(0, self._width - len(line))
            self.stream.write("\r" + line + pad + ("\n" if final else ""))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        """Add ``n`` finished items; reports when ``interval`` has passed since the last report."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self.done += n
        now = self.clock()
        if self.enabled and not self.closed and now - self._last_report >= self.interval:
            self._last_report = now
            self._write(final=False)

    def close(self) -> None:
        """Write the final line (once)."""
        if self.closed:
            return
        self.closed = True
        if self.enabled and (self.tty or self._reported != self.done):  # a log gets no repeated final line
            self._write(final=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        if self.enabled and self.tty and self._width and not self.closed:
            self.stream.write("\n")  # keep the partial status line above the error message
        self.closed = True
