"""The alternating timer, and what a candidate function is. Every round calls every candidate once,
in a rotating order: alternating within one process puts the candidates under the same machine load,
which on a shared machine matters far more than the number of rounds. Each call starts on a settled
process (`settle`)."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax


@dataclass
class Candidate:
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    calls: int = 1  # forwards or steps per call, for loops jitted as a whole

    def __call__(self) -> None:
        jax.block_until_ready(self.fn(*self.args))  # on any device, and for NetKet's pytrees


@dataclass(frozen=True)
class Measure:
    """A function of a case's parameters that returns the candidates to time side by side,
    {name: Candidate}, or numbers it measured itself, {name: seconds or bytes}; and what its rows say."""

    fn: Callable[..., dict[str, Any]]
    title: str
    ratios: tuple[str, ...] = ()  # more ratio columns: "a/b" of candidates, a side may sum "x + y"
    notes: str = ""
    unit: str = "time"


def measures(title: str, **about: Any) -> Callable[[Callable[..., dict[str, Any]]], Measure]:
    return lambda fn: Measure(fn, title, **about)


def settle(window: float = 16e-3, max_wait: float = 2.0) -> None:
    """Wait until this process's threads are idle: less than a quarter of a core busy over `window`
    seconds (four ticks of the kernel's CPU-time clock here, which counts in steps of 4 ms).

    A program that touched gigabytes (NetKet's `vmap(grad)` of an RBMSymm: 2.6 GB) returns its
    results before its buffers are released; the release then runs on another thread for a few
    hundred milliseconds, and made the candidate timed next up to six times slower.
    """
    deadline = time.perf_counter() + max_wait
    while time.perf_counter() < deadline:
        busy = time.process_time()  # every thread of the process
        time.sleep(window)
        if time.process_time() - busy < window / 4:
            return


def time_alternating(
    candidates: dict[str, Candidate], min_rounds: int, budget_s: float, max_rounds: int = 400
):
    """Median seconds per call (per forward or step, for loops) of each candidate, and the rounds."""
    repeats = {}
    for name, c in candidates.items():
        c()  # compiles
        settle()
        start = time.perf_counter()
        c()  # NetKet's drivers compile again on their second call
        # Calls per sample, so that microsecond calls stay above the clock's resolution.
        repeats[name] = max(1, min(1000, int(2e-3 / max(time.perf_counter() - start, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    start, rounds, names = time.perf_counter(), 0, list(candidates)
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for name in names[rounds % len(names) :] + names[: rounds % len(names)]:
            c, n = candidates[name], repeats[name]
            settle()
            t0 = time.perf_counter()
            for _ in range(n):
                c()
            samples[name].append((time.perf_counter() - t0) / (n * c.calls))
        rounds += 1
    return {name: statistics.median(s) for name, s in samples.items()}, rounds
