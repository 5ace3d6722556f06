"""Where independent jobs (a market of a cycle, a trial of a sweep) run: here, in local
processes, or on a Dask distributed cluster.

Every executor returns results in the order of the jobs, whatever order they finish in, so
what a caller does with them does not depend on where they ran. Each worker limits CatBoost's
and Numba's threads to its share of the cores (``threads``), so two workers on a machine do not
oversubscribe it; the jobs themselves pass the same count to the learner.

Jobs are module-level functions with plain arguments (paths, URLs, dataclasses): workers load
the bars from the store themselves, so on a cluster the store and the models folder must be
reachable from every worker (see README, "Sweeps and clusters").
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Cap the native thread pools of this process at ``threads`` (run in each worker)."""
    for name in _THREAD_VARS:
        os.environ[name] = str(threads)
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _local_worker(threads: int) -> None:
    """A local worker process: limited threads, and killed with its parent (Linux), so that
    a cycle killed with SIGKILL leaves no worker writing behind its back."""
    limit_threads(threads)
    if sys.platform == "linux":
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class Executor(Protocol):
    """Runs ``fn`` over ``items``; results in the order of ``items``."""

    name: str

    def map(self, fn: Callable, items: Iterable) -> list: ...


class InlineExecutor:
    """In this process, one job after another."""

    name = "inline"

    def map(self, fn: Callable, items: Iterable) -> list:
        return [fn(item) for item in items]


class ProcessExecutor:
    """Local worker processes (``concurrent.futures``), each with ``threads`` threads."""

    def __init__(self, workers: int, threads: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.name = f"{workers} local processes"
        # spawn: a fresh interpreter per worker (no forked copies of thread pools or locks)
        self._pool = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_local_worker, initargs=(threads,))

    def map(self, fn: Callable, items: Iterable) -> list:
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskExecutor:
    """The workers of the Dask scheduler at ``address`` (``tcp://HOST:PORT``)."""

    def __init__(self, address: str, threads: int) -> None:
        from mlstrategy.errors import ConfigError

        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--scheduler needs Dask: pip install 'mlstrategy[cluster]'"
                              ) from None
        try:
            self._client = Client(address, timeout="10s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address} ({exc}); start "
                              "it with `dask scheduler` and workers with `dask worker "
                              f"{address}`") from None
        self._client.run(limit_threads, threads)
        workers = len(self._client.scheduler_info()["workers"])
        self.name = f"Dask at {address} ({workers} workers)"

    def map(self, fn: Callable, items: Iterable) -> list:
        # pure=False: a job is run even if an identical one ran before (it writes files)
        return self._client.gather(self._client.map(fn, list(items), pure=False))

    def close(self) -> None:
        self._client.close()


@contextmanager
def open_executor(scheduler: str | None, workers: int, threads: int) -> Iterator[Executor]:
    """The executor asked for: Dask at ``scheduler``, else ``workers`` local processes (one:
    inline)."""
    if scheduler is not None:
        executor: Executor = DaskExecutor(scheduler, threads)
    elif workers > 1:
        executor = ProcessExecutor(workers, threads)
    else:
        executor = InlineExecutor()
    try:
        yield executor
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
