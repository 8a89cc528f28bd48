"""Worker processes for the alignment stage (and, through :class:`OrderedPool`, for embedding a database's sparse
rows): independent blocks of work run in forked processes, not threads.

The alignment stage makes millions of short calls into C (an MSV filter call per candidate, three parasail calls
per traced pair) with Python between them. The C releases the GIL, but the Python between calls holds it: with
threads, each thread waits for the other's Python between its own C calls: the Mycoplasma all-against-all with
two threads took 30.6-31.4 s, with two processes 22.3-23.9 s (docs/retrieval.md, "Worker processes"). Forked processes share nothing that needs a lock: each runs
its blocks with the parent's data (copy-on-write memory, nothing is pickled but the block numbers and the
results), and the results come back in block order, so they do not depend on how many processes ran them.

Processes are used where the platform forks (Linux; elsewhere, and for little work, threads run the same blocks)
and when the work is worth two forks (:func:`use_processes`).
"""

from __future__ import annotations

import errno
import itertools
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from phylocl.arguments import option
from phylocl.errors import InputError, open_files_message

__all__ = ["MIN_PROCESS_ITEMS", "PAIR_WEIGHT", "OrderedPool", "grouped_tasks", "map_blocks", "use_processes"]

# work from which forked processes pay, in MSV filter calls (~8 us each on Mycoplasma; a pool of two costs 15-60 ms
# to start with 1 GB resident): 20,000 is ~40 queries of 500 candidates; a pair to score or to trace weighs PAIR_WEIGHT
MIN_PROCESS_ITEMS = 20_000
PAIR_WEIGHT = 5  # a Smith-Waterman or traced pair (~40-100 us) in filter calls
_TASKS: dict[int, Callable] = {}  # token -> the function the forked workers run (inherited through the fork)
_TOKENS = itertools.count()
_LOCK = threading.Lock()


def use_processes(workers: int, items: int) -> bool:
    """Whether :func:`map_blocks` should fork for ``items`` filter calls' worth of work (:data:`PAIR_WEIGHT` per
    pair to score or trace): more than one worker, enough work (:data:`MIN_PROCESS_ITEMS`), and a platform that
    forks."""
    return workers > 1 and items >= MIN_PROCESS_ITEMS and "fork" in multiprocessing.get_all_start_methods() \
        and os.environ.get("PHYLOCL_ALIGN_PROCESSES", "1") != "0"


def _run(token: int, block: int):
    return _TASKS[token](block)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def map_blocks(fn: Callable[[int], object], n_blocks: int, workers: int, *, processes: bool,
               done: Callable[[int], None] | None = None) -> list:
    """``[fn(b) for b in range(n_blocks)]``: in ``workers`` forked processes (``processes``), else in a thread pool
    (``workers > 1``) or in this thread. ``fn`` may be a closure: forked workers inherit it, and only block
    numbers and results cross between processes (results must pickle). An exception in a block is raised here.
    ``done``: called here with each block's number once its result is in, in block order (progress)."""
    if n_blocks <= 0:
        return []

    def collected(b: int, result):
        if done is not None:
            done(b)
        return result

    if workers <= 1 or n_blocks == 1:
        return [collected(b, fn(b)) for b in range(n_blocks)]
    if not processes:
        with ThreadPoolExecutor(min(workers, n_blocks)) as pool:
            return [collected(b, r) for b, r in enumerate(pool.map(fn, range(n_blocks)))]
    with OrderedPool(fn, workers=min(workers, n_blocks)) as pool:
        handles = [pool.submit(b) for b in range(n_blocks)]
        return [collected(b, h.get()) for b, h in enumerate(handles)]


class OrderedPool:
    """``fn`` over arguments submitted one at a time, in ``workers`` forked processes that live as long as the
    ``with`` block (the streaming counterpart of :func:`map_blocks`, e.g. embedding a database buffer after buffer).

    ``submit(arg)`` returns a handle whose ``get()`` gives ``fn(arg)`` (an exception in the worker is raised there);
    the caller keeps the handles in order, so results come back in submission order. ``fn`` may be a closure:
    the workers inherit it through the fork, so it is set when the ``with`` block starts, and only ``arg`` and the
    result cross between processes (both must pickle). With ``workers <= 1`` or where the platform does not fork,
    ``submit`` runs ``fn`` at once in this process."""

    def __init__(self, fn: Callable, *, workers: int) -> None:
        # no more processes than cores this process may use: `--threads 200` on 2 cores forked 200 workers (5x the
        # time); the work is cut the same way, so the results are too
        self.fn, self.workers = fn, min(int(workers), usable_cpus())
        self._pool = None
        self._token: int | None = None

    def __enter__(self) -> "OrderedPool":
        if self.workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with _LOCK:
                self._token = next(_TOKENS)
                _TASKS[self._token] = self.fn
            try:
                self._pool = _start_pool(self.workers)
            except BaseException:
                self._forget()
                raise
        return self

    def submit(self, arg):
        if self._pool is None:
            return _Done(self.fn(arg))
        return self._pool.apply_async(_run, (self._token, arg))

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if self._pool is not None:
                if kind is None:  # the workers finish and exit: no terminate (it can leave a worker waiting on
                    self._pool.close()  # the task queue)
                    self._pool.join()
                else:  # an error or an interrupt here: stop the workers
                    _terminate(self._pool)
        finally:
            self._pool = None
            self._forget()

    def _forget(self) -> None:
        if self._token is not None:
            with _LOCK:
                _TASKS.pop(self._token, None)
            self._token = None


_WORKER_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _start_pool(workers: int):
    """A pool of ``workers`` forked processes, started with SIGTERM and SIGINT blocked (here and so in each child
    until :func:`_init_worker` has set its own handlers): a signal that reached a child between its fork and its
    initializer ran the handler it inherited (``phylocl``'s command line raises on SIGTERM), printed a traceback
    and could leave that worker alive (a stop signal raised in an at-fork hook is ignored), so that the pool
    waited for it forever. Signals sent meanwhile to this process are delivered when the pool has started. A
    start that runs out of open files (every worker takes pipes) is one :class:`~phylocl.errors.InputError`
    naming the limit (:func:`_start_error`)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
    try:
        return multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(previous,))
    except OSError as err:
        raise _start_error(err, workers) from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_error(err: OSError, workers: int) -> BaseException:
    """What to raise when starting ``workers`` processes failed with ``err``: a limit of this machine as one
    :class:`~phylocl.errors.InputError` (the open-files limit, the system's file table, the process limit), any
    other error as it is."""
    advice = f"or use fewer {option('threads')} (1: no worker processes)"  # threads, or --threads in a command
    words = open_files_message(err.errno, to=f" to start {workers} worker processes", advice=advice)
    if words is not None:
        return InputError(words)
    if err.errno == errno.EAGAIN:
        return InputError(f"cannot start {workers} worker processes: the process limit (`ulimit -u`) is reached; "
                          f"raise it {advice}")
    return err


def _terminate(pool, wait: float = 3.0) -> None:
    """``pool.terminate()``, given ``wait`` seconds. A worker killed by a SIGTERM sent to the whole process group
    (``timeout``, a cluster's job cancellation) can die holding the task queue's lock, and ``terminate()`` then
    waits for that lock forever; past ``wait`` the workers are killed and the stuck call is left to its daemon
    thread (multiprocessing's exit handler does not run it twice), so the command exits."""
    stopper = threading.Thread(target=pool.terminate, daemon=True)
    stopper.start()
    stopper.join(wait)
    if stopper.is_alive():
        for worker in getattr(pool, "_pool", []):
            if worker.exitcode is None:
                worker.kill()


class _Done:
    """A result computed at once (``OrderedPool`` without workers)."""

    def __init__(self, value) -> None:
        self.value = value

    def get(self):
        return self.value


def _init_worker(mask=None) -> None:
    """A worker dies of SIGTERM and leaves SIGINT to this process (which stops the pool): the handlers it inherits
    through the fork (``phylocl``'s command line turns SIGTERM into an exception) are not for it. Both signals
    were blocked across the fork (:func:`_start_pool`); ``mask``, the signal mask from before, is put back once
    the handlers are set, so that a SIGTERM sent meanwhile ends the worker now."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def grouped_tasks(key: np.ndarray, size: int) -> list[list[np.ndarray]]:
    """Positions ``0..P-1`` grouped by equal ``key`` ``(P,)`` (each group in position order; groups in key order),
    cut into tasks of whole groups of about ``size`` positions each: ``[[group, ..], ..]`` for :func:`map_blocks`."""
    order = np.argsort(key, kind="stable")  # (P,) positions of one key together, in position order
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    tasks, task, n = [], [], 0
    for group in np.split(order, cuts) if len(order) else []:
        task.append(group)
        n += len(group)
        if n >= size:
            tasks.append(task)
            task, n = [], 0
    if task:
        tasks.append(task)
    return tasks
