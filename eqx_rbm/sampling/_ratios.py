r"""Log-ratios of many moves per configuration: a sum of activations, or for two-valued moves the
logarithm of products, without an activation per hidden unit.

For the `log_cosh` activation a move that changes every pre-activation by
$\sigma a_h$ ($\sigma \in \{-1, 0, 1\}$, $a$ a fixed row) has

$$\frac{\cosh(\theta_h + \sigma a_h)}{\cosh\theta_h} = p_h e^{\sigma a_h} + q_h e^{-\sigma a_h},
\qquad p_h = \frac{1}{1 + e^{-2\theta_h}},\ q_h = \frac{1}{1 + e^{2\theta_h}},$$

so that the hidden part of its log-ratio is a sum of logarithms of products
of these factors, with $p$ and $q$ computed once per configuration and
$e^{\pm a}$ once per move. Both terms of a factor are positive: a factor is
exact to a few ulp for any $a$ and $\theta$ (the form
$\cosh a + \sigma\tanh\theta\sinh a$ loses up to $e^{2|a|}$ ulp where
$\tanh\theta$ rounds to $\pm 1$). This holds for real parameters and sites of
two values with one feature each (spins): a single-site change has $a$ a
kernel row times the feature step, an exchange the difference of two rows
times it. The Metropolis sampler (`_flip`) and the local energies' log-ratios
(`_log_ratios`) both take it.

For complex pre-activations (complex128, one group of hidden units) the
halves have poles where $\cosh\theta_h = 0$; `complex_log_products` uses
exponentials scaled to modulus at most 1 instead, and knows the phase of a
ratio modulo $2\pi$ only.

Each real factor lies in $[e^{-|a_h|}, e^{|a_h|}]$: a logarithm is taken after
`UNITS_PER_LOG` factors at most, so no product leaves the normal range of the
dtype while, in every row, the `UNITS_PER_LOG` largest $|a_h|$ sum to at most
`MEAN_ROW_ENTRY` times as many (`within_bounds`), whichever hidden units a
product takes. A trained filter with a few entries past that mean passes; where
a row breaks the bound the callers keep the sum of activations.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from ..models._model import AbstractRBM
from ..models._parts import grouped_sum, weighted_groups
from ._activations import Activation, activated, unbatched_all
from ._support import COMPLEX_UNITS_PER_LOG, UNITS_PER_LOG, takes_complex_products, takes_products

MEAN_ROW_ENTRY = 9.0
"""The mean |a_h| of the factors of a product at most: `UNITS_PER_LOG` real factors within e^(+-576)
(float64, 64 factors) or e^(+-72) (float32, 8); `COMPLEX_UNITS_PER_LOG` complex ones of modulus at
most 2 e^|a_h| within 2^32 e^288 < e^311 (complex128, 32)."""
STEP_SIZE = 16384
"""Factors per step of the scan over hidden units, at least where the hidden units allow: for few
configurations a step takes several hidden units, so that the loop's cost per step stays small."""
PRODUCT_RANGE = 380.0
"""A complex product of `COMPLEX_UNITS_PER_LOG` (32) factors within the bound, whose moduli multiply
to at most e^311, is kept when its modulus lies within e^(+-380): its partial products then stayed
above e^(-691), normal in float64."""
MIN_MOVES = 2048
"""Products only for at least this many (configuration, move) pairs per call: for fewer, the sum of
activations is faster. Under `vmap` a call sees one configuration, and keeps the sum."""


def within_bounds(a: Array) -> Bool[Array, ""]:
    """Whether the rows `a`, shape `(n_moves, n_hidden)`, are within the product's bound: true only
    where, in every row, the `k` largest |a_h| sum to at most `k * MEAN_ROW_ENTRY`, `k` the factors
    per logarithm of the dtype of `a` (complex rows: of the complex product form). The test is an
    upper bound on that sum, so a row just within it may be refused, never one past it accepted."""
    complex_rows = jnp.issubdtype(a.dtype, jnp.complexfloating)
    k = (COMPLEX_UNITS_PER_LOG if complex_rows else UNITS_PER_LOG)[jnp.dtype(a.dtype)]
    size = jnp.abs(a)  # for complex rows, |cosh a| and |sinh a| are at most e^|a| too
    # Any k factors, wherever their hidden units lie, sum to at most the k largest, which sum to at
    # most k t + sum_h max(|a_h| - t, 0) for every t (equal at the k-th largest). Nine t instead of a
    # sort, which XLA's CPU backend runs far slower than these passes. t = MEAN_ROW_ENTRY alone
    # accepts every row whose entries are all within it (the earlier test); t = 0 gives the row's
    # sum, exact where a row has at most k entries.
    n = min(k, size.shape[-1])
    ts = [MEAN_ROW_ENTRY * j / 8 for j in range(9)]
    sums = [n * t + jnp.sum(jnp.maximum(size - t, 0), axis=-1) for t in ts]
    return jnp.max(functools.reduce(jnp.minimum, sums), initial=0.0) <= k * MEAN_ROW_ENTRY


def chunk_size(n: int, limit: int) -> int:
    """The largest divisor of `n` up to `limit`: how many factors one logarithm takes."""
    return max(d for d in range(1, limit + 1) if n % d == 0)


def halves(theta: Array) -> tuple[Array, Array]:
    """`p = 1 / (1 + exp(-2 theta))` and `q = 1 / (1 + exp(2 theta))`, each to a few ulp."""
    return jax.nn.sigmoid(2 * theta), jax.nn.sigmoid(-2 * theta)


def moved_halves(p: Array, q: Array, up: Array, down: Array, positive: Array) -> tuple[Array, Array]:
    """`p e^(sigma a)` and `q e^(-sigma a)`, the two positive terms of a factor, with `up = e^a`,
    `down = e^-a` and `positive` where `sigma >= 0`. Their sum is the factor; each over the sum is
    the new `p` or `q` of an accepted move."""
    return p * jnp.where(positive, up, down), q * jnp.where(positive, down, up)


def _log_products(
    p: Array,
    q: Array,
    sigma: Array,
    exp_a: Array,
    exp_minus_a: Array,
    units_per_log: int,
    bound: float | None = None,
) -> tuple[Array, Array]:
    """$\\sum_h \\log(p_h e^{\\sigma_p a_{ph}} + q_h e^{-\\sigma_p a_{ph}})$ in chunks of `units_per_log`.

    `p` and `q` have shape `(*batch, n_hidden)`, `sigma` `(*batch, n_moves)`
    in $\\{-1, 0, 1\\}$ (`-1` exchanges the roles of `p` and `q`), `exp_a` and
    `exp_minus_a` `(n_moves, n_hidden)`. The products run as a scan over
    hidden units, each step element-wise multiply-adds over
    `(*batch, n_moves)` of one hidden unit or a few (`STEP_SIZE`): XLA's CPU
    backend vectorises that well, unlike a multiplicative reduction along the
    hidden axis. Returns the sum and, with `bound`, whether the modulus of
    every product of `units_per_log` factors lay within $e^{\\pm\\text{bound}}$
    (else true). Moves with `sigma = 0` are the caller's to set.
    """
    positive = sigma >= 0
    n_hidden = p.shape[-1]
    chunk = chunk_size(n_hidden, units_per_log)
    per_step = 1  # hidden units per step: a power of two dividing the chunk
    while chunk % (2 * per_step) == 0 and 2 * per_step * math.prod(sigma.shape) <= STEP_SIZE:
        per_step *= 2
    shape = (n_hidden // chunk, chunk // per_step, per_step)

    def by_unit(values: Array) -> Array:  # (*batch, n_hidden) -> (chunks, steps, per_step, *batch, 1)
        return jnp.moveaxis(values, -1, 0).reshape(*shape, *values.shape[:-1])[..., None]

    by_move = (r.T.reshape(*shape, *(1,) * (p.ndim - 1), -1) for r in (exp_a, exp_minus_a))

    def step(product: Array, units: tuple[Array, ...]) -> tuple[Array, None]:
        p, q, up, down = units
        for j in range(per_step):
            p_part, q_part = moved_halves(p[j], q[j], up[j], down[j], positive)
            product = product * (p_part + q_part)
        return product, None

    def chunk_log(carry: tuple[Array, Array], units: tuple[Array, ...]) -> tuple[tuple[Array, Array], None]:
        total, within = carry
        product, _ = jax.lax.scan(step, jnp.ones(sigma.shape, p.dtype), units)
        if bound is not None:
            # max(|Re|, |Im|) lies within a factor sqrt(2) of the modulus, without a square root.
            size = jnp.maximum(jnp.abs(product.real), jnp.abs(product.imag))
            within = within & (size >= math.exp(-bound)) & (size <= math.exp(bound))
        return (total + jnp.log(product), within), None

    start = (jnp.zeros(sigma.shape, p.dtype), jnp.ones(sigma.shape, bool))
    (total, within), _ = jax.lax.scan(chunk_log, start, (by_unit(p), by_unit(q), *by_move))
    return total, within


def log_products(theta: Array, sigma: Array, exp_a: Array, exp_minus_a: Array) -> Array:
    r"""$\sum_h \log(p_h e^{\sigma_p a_{ph}} + q_h e^{-\sigma_p a_{ph}})$, exactly 0 where $\sigma_p = 0$.

    `theta` of shape `(*batch, n_hidden)`, real, `sigma` `(*batch, n_moves)` in
    $\{-1, 0, 1\}$, `exp_a` and `exp_minus_a` `(n_moves, n_hidden)`.
    """
    p, q = halves(theta)
    total, _ = _log_products(p, q, sigma, exp_a, exp_minus_a, UNITS_PER_LOG[jnp.dtype(theta.dtype)])
    return jnp.where(sigma == 0, 0, total)


def scaled_exponentials(theta: Array) -> tuple[Array, Array]:
    """`u` and `v` proportional to `exp(theta)` and `exp(-theta)`, scaled so that the larger is 1.

    Then $\\cosh(\\theta + b) / \\cosh\\theta = (u e^b + v e^{-b}) / (u + v)$
    for any complex $b$, with $|u|, |v| \\le 1$: unlike the halves, no term
    has a pole where $\\cosh\\theta = 0$.
    """
    flip = jnp.signbit(theta.real)
    small = jnp.exp(-2 * jnp.where(flip, -theta, theta))  # modulus at most 1
    one = jnp.ones_like(small)
    return jnp.where(flip, small, one), jnp.where(flip, one, small)


def complex_log_products(theta: Array, sigma: Array, exp_a: Array, exp_minus_a: Array) -> tuple[Array, Array]:
    r"""$\sum_h \log\cosh(\theta_h + \sigma_p a_{ph}) - \log\cosh\theta_h$ for complex pre-activations.

    As `log_products`, with the scaled exponentials $u, v$ of $\theta$ in
    place of the halves: each factor $u_h e^{\sigma_p a_{ph}} + v_h
    e^{-\sigma_p a_{ph}}$ has modulus at most $2 e^{|a_{ph}|}$, and
    $\sum_h \log(u_h + v_h)$ is subtracted once per configuration. The
    result is exactly 0 where $\sigma_p = 0$; its imaginary part, the phase of
    $\psi(x')/\psi(x)$, is determined modulo $2\pi$. Also returns whether
    every product of `COMPLEX_UNITS_PER_LOG` factors stayed within
    $e^{\pm}$`PRODUCT_RANGE` in modulus (else the caller keeps the sum: a
    proposal next to a zero of $\psi$).
    """
    u, v = scaled_exponentials(theta)
    units_per_log = COMPLEX_UNITS_PER_LOG[jnp.dtype(theta.dtype)]
    total, within = _log_products(u, v, sigma, exp_a, exp_minus_a, units_per_log, PRODUCT_RANGE)
    total = total - jnp.sum(jnp.log(u + v), axis=-1, keepdims=True)
    moved = sigma != 0
    return jnp.where(moved, total, 0), jnp.all(within | ~moved)


def _rows_times(change: Array, rows: Array) -> Array:
    """`sum_c change[..., p, c] * rows[p, c, :]`: the pre-activation changes of `P` proposals.

    A broadcast product per feature instead of a contraction: XLA then fuses it
    into the consumer instead of writing a `(*batch, P, n_hidden)` array.
    """
    out = change[..., 0, None] * rows[:, 0]
    for c in range(1, change.shape[-1]):
        out = out + change[..., c, None] * rows[:, c]
    return out


def summed(model: AbstractRBM, theta: Array, change: Array, rows: Array) -> Array:
    """The hidden part of the log-ratios as a sum of activation differences (any model)."""

    # Differences per hidden unit, then their sum: the rounding is relative to the
    # changes rather than to the whole hidden sum.
    def hidden(activation: Activation, theta: Array, change: Array, rows: Array) -> Array:
        before = activation(theta)[..., None, :]
        after = activation(theta[..., None, :] + _rows_times(change, rows))
        # XLA may evaluate `before` and `after` in differently vectorised loops, an
        # ulp apart: an unchanged configuration is set to exactly 0 explicitly.
        total = grouped_sum(model.hidden_coefficients, after - before)
        return jnp.where(jnp.all(change == 0, axis=-1), 0, total)

    def imag_bound() -> Array:  # of theta + delta theta: sum_c max |change_c| max |Im rows_c|
        per_feature = jnp.max(jnp.abs(change), axis=tuple(range(change.ndim - 1)), initial=0.0)
        return jnp.max(jnp.abs(theta.imag), initial=0.0) + jnp.sum(
            per_feature * jnp.max(jnp.abs(rows.imag), axis=(0, 2), initial=0.0)
        )

    return activated(model, imag_bound, hidden, theta, change, rows)


def hidden_ratios(model: AbstractRBM, theta: Array, change: Array, rows: Array, product: bool) -> Array:
    """The hidden part of the log-ratios of moves changing theta by `sum_c change[..., p, c] rows[p, c]`.

    `change` of shape `(*batch, n_moves, features_per_site)`, `rows`
    `(n_moves, features_per_site, n_hidden)`. As products on CPU where they
    apply (`product`; `MIN_MOVES` moves at least; each change 0 or plus or
    minus one step `d`, two values per site, and `d * rows` within the bounds,
    decided once per call on the whole batch so that a conditional runs one
    branch), else as `summed`. Real pre-activations take `log_products`;
    complex128 ones `complex_log_products`, and the sum after all where one
    of its products left its range.
    """
    by_sum: Callable[[], Array] = lambda: summed(model, theta, change, rows)  # noqa: E731
    many = math.prod(change.shape[:-1]) >= MIN_MOVES
    real = takes_products(model, theta.dtype)
    # A scan over hidden units is a loop of small kernels: products pay on CPU only.
    if not (product and many and jax.default_backend() == "cpu"):
        return by_sum()
    if not (real or takes_complex_products(model, theta.dtype)):
        return by_sum()
    steps = change[..., 0]
    step = jnp.max(jnp.abs(steps), initial=0.0)
    a = (step * rows[:, 0]).astype(theta.dtype)
    two_valued = jnp.all((steps == 0) | (jnp.abs(steps) == step))
    sigma = jnp.sign(jnp.real(steps)).astype(jnp.int32)
    if real:

        def by_product() -> Array:
            # One product per group of hidden units, weighted by its coefficient.
            per_group = lambda t, up, down: log_products(t, sigma, up, down)  # noqa: E731
            return weighted_groups(model.hidden_coefficients, per_group, theta, jnp.exp(a), jnp.exp(-a))

        usable = unbatched_all(jax.lax.stop_gradient(two_valued & within_bounds(a)))
        return jax.lax.cond(usable, by_product, by_sum)

    # Complex: one group of coefficient 1 (`takes_complex_products`), so that a phase known
    # modulo 2 pi changes the imaginary part of the log-ratio only.
    real_steps = jnp.all(jnp.imag(steps) == 0)
    usable = unbatched_all(jax.lax.stop_gradient(two_valued & real_steps & within_bounds(a)))

    def by_complex_product() -> Array:
        total, within = complex_log_products(theta, sigma, jnp.exp(a), jnp.exp(-a))
        return jax.lax.cond(unbatched_all(jax.lax.stop_gradient(within)), lambda: total, by_sum)

    return jax.lax.cond(usable, by_complex_product, by_sum)
