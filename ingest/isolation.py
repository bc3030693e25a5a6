"""Parse files in a child process with a time limit and a memory limit.

A damaged PDF can make a parser loop or allocate without end. Parsing runs in
a process forked from a small, single-threaded fork server, so a file that
runs over its limits is stopped and reported while the caller, for example
the API server, keeps running.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import select
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ingest.documents import LoadedDocument
from ingest.loaders import LoadError

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["ingest.pipeline"])


def _virtual_memory_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _exit_with(caller_pid: int) -> None:
    """Make this parser process exit as soon as the process that started it ends.

    The parser is forked from the fork server, not from the caller. It keeps
    both ends of its own task queue open, so without this it would wait for
    tasks forever after the caller is killed, and keep the fork server alive.
    """
    try:
        caller = os.pidfd_open(caller_pid)
    except OSError:
        return  # NOTE: without pidfd (Linux before 5.3) such a parser stays idle

    def wait_for_caller() -> None:
        select.select([caller], [], [])
        os._exit(0)

    threading.Thread(target=wait_for_caller, daemon=True).start()


def _parse_with_limit(path: Path, memory_mb: int) -> LoadedDocument:
    from ingest.pipeline import parse_file

    # The soft limit is set again for each file, relative to what the process
    # already holds, and the hard limit is left alone so it can be raised.
    limit = _virtual_memory_bytes() + memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        return parse_file(path)
    except MemoryError as error:
        raise LoadError(
            f"parsing needed more than {memory_mb} MB (KB_PARSE_MEMORY_MB); "
            "the file may be damaged"
        ) from error


class _Pool:
    """One parser process, reused until a file breaks a limit."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def parse(self, path: Path, timeout_s: float, memory_mb: int) -> LoadedDocument:
        # One file at a time, so that the time limit counts only its own work.
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=_context,
                    initializer=_exit_with,
                    initargs=(os.getpid(),),
                )
            future = self._executor.submit(_parse_with_limit, path, memory_mb)
            try:
                return future.result(timeout=timeout_s)
            except FutureTimeout as error:
                self._discard()
                raise LoadError(
                    f"parsing timed out after {timeout_s:g} s (KB_PARSE_TIMEOUT); the "
                    "file may be damaged, or raise the limit for very large files"
                ) from error
            except BrokenProcessPool as error:
                self._discard()
                raise LoadError(
                    "the parser process crashed; the file may be damaged"
                ) from error

    def _discard(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        for process in list((executor._processes or {}).values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)


_pool = _Pool()


def parse_isolated(path: Path, timeout_s: float, memory_mb: int) -> LoadedDocument:
    """Parse a file in the parser process; raise LoadError when a limit is hit."""
    return _pool.parse(path, timeout_s, memory_mb)
