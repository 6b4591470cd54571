"""The alternating timer: every candidate once per round, medians over rounds.

Each round calls every candidate once, in a rotating order so that none always runs first
after a pause. Alternating within one process puts the candidates under the same machine
load, which on a shared machine matters far more than the number of rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax


@dataclass
class Candidate:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    calls: int = 1  # forwards per call, for loops jitted as a whole


@dataclass
class Settings:
    min_rounds: int
    budget_s: float


def call(candidate: Candidate) -> None:
    jax.block_until_ready(candidate.fn(*candidate.args))


def _inner_repeats(candidate: Candidate, target_s: float) -> int:
    """Calls per sample, so that microsecond calls are not dominated by the clock."""
    start = time.perf_counter()
    call(candidate)
    once = time.perf_counter() - start
    return max(1, min(1000, int(target_s / max(once, 1e-7))))


def time_alternating(
    candidates: dict[str, Candidate], *, min_rounds: int, budget_s: float, max_rounds: int = 400
) -> tuple[dict[str, float], int]:
    """Median seconds per forward of each candidate, and the number of rounds."""
    for c in candidates.values():  # compile and warm up
        call(c)
        call(c)
    repeats = {name: _inner_repeats(c, 2e-3) for name, c in candidates.items()}
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            c, n = candidates[name], repeats[name]
            t0 = time.perf_counter()
            for _ in range(n):
                call(c)
            samples[name].append((time.perf_counter() - t0) / (n * c.calls))
        rounds += 1
    return {name: statistics.median(s) for name, s in samples.items()}, rounds


def timed(settings: Settings, candidates: dict[str, Candidate]) -> tuple[dict[str, float], int]:
    """`time_alternating` with a case's settings."""
    return time_alternating(candidates, min_rounds=settings.min_rounds, budget_s=settings.budget_s)
