"""Local-update cases: one Metropolis move, and moves inside a jitted scan."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp

import eqx_rbm

from .common import DTYPES, EQX, GEMM, Result, gemm, spins
from .timing import Candidate, Settings, timed


def local_update_cases(n: int, alpha: int, chains: list[int], s: Settings) -> Iterator[Result]:
    key = jax.random.key(0)
    model = eqx_rbm.RBM(n, alpha=alpha, key=key)
    for batch in chains:
        x = spins(jax.random.key(1), batch, n, jnp.float64)
        theta = eqx_rbm.hidden_theta(model, x)
        sites = jax.random.randint(jax.random.key(2), (batch, 1), 0, n)
        values = -jnp.take_along_axis(x, sites, axis=-1)
        x_new = eqx_rbm.set_sites(x, sites, values)
        theta_new = eqx_rbm.hidden_theta(model, x_new)
        candidates = {
            EQX: Candidate(jax.jit(eqx_rbm.log_psi_ratio), (model, x, theta, sites, values)),
            "recompute": Candidate(jax.jit(lambda m, x: m(x)), (model, x_new)),
            GEMM: gemm(x_new, model.kernel),
            # What any exact update must pay: the activation of every hidden unit, twice.
            "activations": Candidate(
                jax.jit(lambda a, b: jnp.sum(eqx_rbm.log_cosh(a) - eqx_rbm.log_cosh(b), axis=-1)),
                (theta_new, theta),
            ),
        }
        medians, rounds = timed(s, candidates)
        yield Result(
            "local update",
            f"float64 N={n} alpha={alpha} chains={batch} k=1",
            {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch, "k": 1},
            medians,
            rounds,
            notes="eqx_rbm: log_psi_ratio; recompute: log psi of the proposal from scratch",
            derived={"speedup_vs_recompute": medians["recompute"] / medians[EQX]},
        )


def local_loop_cases(
    n: int, alpha: int, chains: list[int], s: Settings, steps: int = 200
) -> Iterator[Result]:
    """Single-site Metropolis-like sweeps jitted as a whole: time per step."""
    model = eqx_rbm.RBM(n, alpha=alpha, key=jax.random.key(0))
    for batch in chains:
        x = spins(jax.random.key(1), batch, n, jnp.float64)
        sites = jax.random.randint(jax.random.key(2), (steps, batch, 1), 0, n)

        def local(m, x, sites):
            def step(carry, site):
                x, theta = carry
                values = -jnp.take_along_axis(x, site, axis=-1)
                delta, theta = eqx_rbm.log_psi_ratio(m, x, theta, site, values)
                return (eqx_rbm.set_sites(x, site, values), theta), delta

            return jax.lax.scan(step, (x, eqx_rbm.hidden_theta(m, x)), sites)[1]

        def recompute(m, x, sites):
            def step(carry, site):
                x, log_psi = carry
                x = eqx_rbm.set_sites(x, site, -jnp.take_along_axis(x, site, axis=-1))
                new = m(x)
                return (x, new), new - log_psi

            return jax.lax.scan(step, (x, m(x)), sites)[1]

        candidates = {
            EQX: Candidate(jax.jit(local), (model, x, sites), calls=steps),
            "recompute": Candidate(jax.jit(recompute), (model, x, sites), calls=steps),
        }
        medians, rounds = timed(s, candidates)
        yield Result(
            "local update loop",
            f"float64 N={n} alpha={alpha} chains={batch} k=1",
            {"dtype": "float64", "N": n, "alpha": alpha, "batch": batch, "k": 1},
            medians,
            rounds,
            notes=f"{steps} accepted flips in one jitted lax.scan; time per step",
            derived={"speedup_vs_recompute": medians["recompute"] / medians[EQX]},
        )


def local_state_cases(
    dtypes: list[str], shapes: list[tuple[int, int, int]], s: Settings, steps: int = 200
) -> Iterator[Result]:
    """Metropolis loops with the cached `LocalState` API against `log_psi_ratio`: time per step.

    The state keeps the sum of the activation over hidden units, so a proposal evaluates the
    activation on the proposed pre-activations only; `log_psi_ratio` evaluates it on the
    current ones as well.
    """
    for dtype_name in dtypes:
        for n, alpha, batch in shapes:
            model = eqx_rbm.RBM(n, alpha=alpha, param_dtype=DTYPES[dtype_name], key=jax.random.key(0))
            x = spins(jax.random.key(1), batch, n, jnp.float64)
            sites = jax.random.randint(jax.random.key(2), (steps, batch, 1), 0, n)
            log_u = jnp.log(jax.random.uniform(jax.random.key(3), (steps, batch)))

            def cached(m, x, sites, log_u):
                def step(state, inputs):
                    site, log_u = inputs
                    flipped = -jnp.take_along_axis(state.x, site, axis=-1)
                    delta, proposed = eqx_rbm.propose_move(m, state, site, flipped)
                    return eqx_rbm.accept_moves(state, proposed, log_u < 2 * delta.real), delta

                return jax.lax.scan(step, eqx_rbm.local_state(m, x), (sites, log_u))[1]

            def ratio(m, x, sites, log_u):
                def step(carry, inputs):
                    (x, theta), (site, log_u) = carry, inputs
                    flipped = -jnp.take_along_axis(x, site, axis=-1)
                    delta, new_theta = eqx_rbm.log_psi_ratio(m, x, theta, site, flipped)
                    accept = (log_u < 2 * delta.real)[:, None]
                    x = jnp.where(accept, eqx_rbm.set_sites(x, site, flipped), x)
                    return (x, jnp.where(accept, new_theta, theta)), delta

                return jax.lax.scan(step, (x, eqx_rbm.hidden_theta(m, x)), (sites, log_u))[1]

            args = (model, x, sites, log_u)
            candidates = {
                EQX: Candidate(jax.jit(cached), args, calls=steps),
                "log_psi_ratio": Candidate(jax.jit(ratio), args, calls=steps),
            }
            medians, rounds = timed(s, candidates)
            yield Result(
                "local update API",
                f"{dtype_name} N={n} alpha={alpha} chains={batch} k=1",
                {"dtype": dtype_name, "N": n, "alpha": alpha, "batch": batch, "k": 1},
                medians,
                rounds,
                notes=f"{steps} Metropolis steps in one jitted lax.scan, time per step; "
                "eqx_rbm: local_state, propose_move, accept_moves; log_psi_ratio: the uncached API",
                derived={"speedup_vs_log_psi_ratio": medians["log_psi_ratio"] / medians[EQX]},
            )
