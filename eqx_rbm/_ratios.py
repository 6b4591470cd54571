r"""Log-ratios of many moves per configuration: a sum of activations, or for two-valued moves the
logarithm of a product, without an activation per hidden unit.

For the `log_cosh` activation a move that changes every pre-activation by
$\sigma a_h$ ($\sigma \in \{-1, 0, 1\}$, $a$ a fixed row) has

$$\frac{\cosh(\theta_h + \sigma a_h)}{\cosh\theta_h} = \cosh a_h + \sigma \tanh(\theta_h) \sinh a_h,$$

so that the hidden part of its log-ratio is the logarithm of one product of
multiply-adds, with $\tanh\theta$ computed once per configuration and
$\cosh a$, $\sinh a$ once per move. This holds for real parameters and sites
of two values with one feature each (spins): a single-site change has $a$ a
kernel row times the feature step, an exchange the difference of two rows
times it. The Metropolis sampler (`eqx_rbm._flip`) and the local energies'
log-ratios (`eqx_rbm._local`) both take it.

Each factor lies in $[e^{-|a_h|}, e^{|a_h|}]$, so a row sum $\sum_h |a_h|$
within the exponent range rules out overflow and underflow of the product,
and $|a_h| \le$ `MAX_ROW_ENTRY` bounds the cancellation in a factor by
$e^{2|a_h|}$ ulp. Where the rows break either bound the callers keep the sum
of activations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from ._log_cosh import log_cosh
from ._model import AbstractRBM, grouped_sum, weighted_groups
from ._separately import Activation, activated, unbatched_all

MAX_ROW_ENTRY = {jnp.dtype(jnp.float64): 3.0, jnp.dtype(jnp.float32): 1.5}
"""The largest |a_h| a product accepts: cancellation of at most e^6 (e^3) ulp in a factor."""
MAX_ROW_SUM = {jnp.dtype(jnp.float64): 600.0, jnp.dtype(jnp.float32): 60.0}
"""The largest row sum of |a_h|: the product stays within the normal range of the dtype."""
STEP_SIZE = 16384
"""Factors per step of the scan over hidden units, at least where the hidden units allow: for few
configurations a step takes several hidden units, so that the loop's cost per step stays small."""
MIN_MOVES = 2048
"""Products only for at least this many (configuration, move) pairs per call: for fewer, the sum of
activations is faster. Under `vmap` a call sees one configuration, and keeps the sum."""


def applies(model: AbstractRBM, theta: Array) -> bool:
    """Whether products can stand for the activations of this model (values and bounds aside)."""
    return (
        model.activation is log_cosh
        and model.features_per_site == 1
        and jnp.issubdtype(theta.dtype, jnp.floating)
        and jnp.dtype(theta.dtype) in MAX_ROW_ENTRY
    )


def within_bounds(a: Array) -> Bool[Array, ""]:
    """Whether every row of `a`, shape `(n_moves, n_hidden)`, is within the bounds of the product."""
    dtype = jnp.dtype(a.dtype)
    magnitude = jnp.abs(a)
    return (jnp.max(magnitude, initial=0.0) <= MAX_ROW_ENTRY[dtype]) & (
        jnp.max(jnp.sum(magnitude, axis=-1), initial=0.0) <= MAX_ROW_SUM[dtype]
    )


def log_products(theta: Array, sigma: Array, cosh: Array, sinh: Array) -> Array:
    r"""$\sum_h \log(\cosh a_{ph} + \sigma_p \tanh(\theta_h) \sinh a_{ph})$, exactly 0 where $\sigma_p = 0$.

    `theta` of shape `(*batch, n_hidden)`, `sigma` `(*batch, n_moves)` in
    $\{-1, 0, 1\}$, `cosh` and `sinh` `(n_moves, n_hidden)`. The product runs
    as a scan over hidden units, each step element-wise multiply-adds over
    `(*batch, n_moves)` of one hidden unit or a few (`STEP_SIZE`): XLA's CPU
    backend vectorises that well, unlike a multiplicative reduction along the
    hidden axis.
    """
    # A move that changes nothing takes sigma = 1 here and is set to 0 below:
    # one multiply-add per factor instead of also scaling cosh by sigma^2.
    unit = jnp.where(sigma == 0, 1, sigma).astype(theta.dtype)
    n_hidden = theta.shape[-1]
    per_step = 1  # hidden units per step: a power of two dividing n_hidden
    while n_hidden % (2 * per_step) == 0 and 2 * per_step * math.prod(sigma.shape) <= STEP_SIZE:
        per_step *= 2
    blocks = n_hidden // per_step
    tanh = jnp.moveaxis(jnp.tanh(theta), -1, 0).reshape(blocks, per_step, *theta.shape[:-1])
    cosh, sinh = (r.T.reshape(blocks, per_step, *(1,) * (theta.ndim - 1), -1) for r in (cosh, sinh))

    def step(product: Array, factor_rows: tuple[Array, Array, Array]) -> tuple[Array, None]:
        t, c, s = factor_rows
        for j in range(per_step):
            product = product * (c[j] + (t[j][..., None] * unit) * s[j])
        return product, None

    start = jnp.ones(unit.shape, theta.dtype)
    product, _ = jax.lax.scan(step, start, (tanh, cosh, sinh))
    return jnp.where(sigma == 0, 0, jnp.log(product))


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
    branch), else as `summed`.
    """
    by_sum: Callable[[], Array] = lambda: summed(model, theta, change, rows)  # noqa: E731
    many = math.prod(change.shape[:-1]) >= MIN_MOVES
    # A scan over hidden units is a loop of small kernels: products pay on CPU only.
    if not (product and many and applies(model, theta) and jax.default_backend() == "cpu"):
        return by_sum()
    steps = change[..., 0].astype(theta.dtype)
    step = jnp.max(jnp.abs(steps), initial=0.0)
    a = step * rows[:, 0].astype(theta.dtype)
    two_valued = jnp.all((steps == 0) | (jnp.abs(steps) == step))
    usable = unbatched_all(jax.lax.stop_gradient(two_valued & within_bounds(a)))

    def by_product() -> Array:
        # One product per group of hidden units, weighted by its coefficient.
        sigma = jnp.sign(steps)
        per_group = lambda t, c, s: log_products(t, sigma, c, s)  # noqa: E731
        return weighted_groups(model.hidden_coefficients, per_group, theta, jnp.cosh(a), jnp.sinh(a))

    return jax.lax.cond(usable, by_product, by_sum)
