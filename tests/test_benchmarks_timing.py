"""The benchmark runner's timer waits for work a candidate leaves running (benchmarks/timing.py)."""

from __future__ import annotations

import threading
import time

from benchmarks.timing import settle


def _burn(cpu_seconds: float) -> threading.Thread:
    """A thread that spends `cpu_seconds` of its own CPU time, started."""

    def burn() -> None:
        start = time.thread_time()
        while time.thread_time() - start < cpu_seconds:
            sum(range(1000))

    thread = threading.Thread(target=burn, daemon=True)
    thread.start()
    return thread


def test_settle_waits_for_a_busy_thread_of_the_process():
    # What a program that released gigabytes leaves behind: another thread of this process, busy.
    thread = _burn(0.3)
    settle()
    assert not thread.is_alive()


def test_settle_returns_at_once_on_an_idle_process():
    settle()  # whatever an earlier test of this worker left running
    start = time.perf_counter()
    settle()
    assert time.perf_counter() - start < 0.2
