r"""Stochastic reconfiguration: the SR-preconditioned energy gradient of a batch of samples.

Built on the factorised Jacobian of `_derivatives.py`: in sample space the
$n \times n$ kernel and the product $Y^\dagger w$ come in closed form, in
parameter space the dense rows $Y$ are formed once.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jax.core import Tracer
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Num, Real, jaxtyped

from ..internal._sharding import batch_contract
from ..models._model import AbstractRBM
from ._derivatives import jacobian, n_params

_SPACES = ("auto", "samples", "parameters")


def _split(model: AbstractRBM) -> bool:
    """Whether $O$ is complex for real parameters: SR then solves with its real and imaginary parts.

    Real parameters with complex `hidden_coefficients` (RBMModPhase) give a
    complex $\\log\\psi$ that is not holomorphic in them, and the energy
    gradient with respect to them is $\\operatorname{Re}\\,Y^\\dagger(E - \\bar E)$,
    with $S = \\operatorname{Re}\\,Y^\\dagger Y / n$: the rows of $Y$ count as
    the `2 n` real rows $[\\operatorname{Re} Y; \\operatorname{Im} Y]$.
    """
    return not model.holomorphic and bool(jnp.issubdtype(model.log_psi_dtype, jnp.complexfloating))


def _centred_energies(model: AbstractRBM, local_energies: Array, dtype: Any) -> Array:
    # A real O sees only the real part of F = Y^T (E - mean E) / n: the imaginary part of the
    # energies does not enter the energy gradient with respect to real parameters.
    e = jnp.asarray(local_energies)
    if not jnp.issubdtype(model.log_psi_dtype, jnp.complexfloating):
        e = e.real
    e = e.astype(dtype)
    return e - jnp.mean(e)


# The sample-space solve runs as three programs when called eagerly: on CPU, LAPACK's Cholesky
# factorisation ran several times slower inside one XLA program with the kernel's products than
# on its own. Inside a caller's jit the three are inlined into its program.
@jax.jit
def _sample_system(
    model: AbstractRBM, x: Array, local_energies: Array, diag_shift: Array
) -> tuple[Array, Array]:
    n = x.shape[0]
    jac = jacobian(model, x, centred=True)
    kernel = jac.kernel()
    de = _centred_energies(model, local_energies, kernel.dtype)
    if _split(model):
        # The Gram matrix of the real rows [Re Y; Im Y] from K = Y Y^dagger and T = Y Y^T.
        t = jac.kernel(conjugate=False)
        re_re, im_im = (kernel.real + t.real) / 2, (kernel.real - t.real) / 2
        re_im, im_re = (t.imag - kernel.imag) / 2, (t.imag + kernel.imag) / 2
        kernel = jnp.block([[re_re, re_im], [im_re, im_im]])
        de = jnp.concatenate([de.real, de.imag])
    size = kernel.shape[0]
    return kernel + (n * diag_shift) * jnp.eye(size, dtype=kernel.dtype), de


@jax.jit
def _cholesky_solve(matrix: Array, rhs: Array) -> Array:
    # Hermitian positive definite: Cholesky is half the work of an LU solve.
    factor = jax.scipy.linalg.cho_factor(matrix, lower=True)
    return jax.scipy.linalg.cho_solve(factor, rhs.astype(matrix.dtype))


@jax.jit
def _push_back(model: AbstractRBM, x: Array, weights: Array) -> AbstractRBM:
    jac = jacobian(model, x, centred=True)
    if _split(model):
        # [Re Y; Im Y]^T [w_re; w_im] = Re(Y^dagger (w_re + i w_im)).
        n = x.shape[0]
        update = jac.rmatvec(jax.lax.complex(weights[:n], weights[n:]))
        return jax.tree.map(lambda leaf: leaf.real.astype(model.param_dtype), update)
    update = jac.rmatvec(weights)
    return jax.tree.map(lambda leaf: leaf.astype(model.param_dtype), update)


@jax.jit
def _parameter_system(
    model: AbstractRBM, x: Array, local_energies: Array, diag_shift: Array
) -> tuple[Array, Array]:
    rows = jacobian(model, x, centred=True).flat()
    n = rows.shape[0]
    de = _centred_energies(model, local_energies, rows.dtype)
    conj = jnp.conj(rows)
    s = batch_contract(conj, rows, model.precision) / n
    f = batch_contract(conj, de, model.precision) / n
    if _split(model):
        s, f = s.real, f.real
    return s + diag_shift * jnp.eye(s.shape[0], dtype=s.dtype), f


@jax.jit
def _unflatten(model: AbstractRBM, delta: Array) -> AbstractRBM:
    params, static = eqx.partition(model, eqx.is_inexact_array)
    return eqx.combine(ravel_pytree(params)[1](delta.astype(model.param_dtype)), static)


def _check(x: Any, local_energies: Any, diag_shift: Any, space: Any) -> None:
    if space not in _SPACES:
        raise ValueError(f"space: expected one of {', '.join(map(repr, _SPACES))}, got {space!r}")
    if x.ndim != 2:
        raise ValueError(
            "x: expected one batch dimension, shape (n_samples, n_sites); reshape it with "
            f"x.reshape(-1, x.shape[-1]). Got shape {tuple(x.shape)}"
        )
    if local_energies.shape != x.shape[:1]:
        raise ValueError(
            "local_energies: expected one energy per sample of x, shape "
            f"({x.shape[0]},), got shape {tuple(local_energies.shape)}"
        )
    if not isinstance(diag_shift, Tracer):
        value = float(diag_shift)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                "diag_shift: expected a positive finite number (S + diag_shift * I must be "
                f"positive definite), got {value!r}"
            )


@jaxtyped(typechecker=beartype)
def sr_gradient(
    model: AbstractRBM,
    x: Num[Array | np.ndarray, "*batch n_sites"],
    local_energies: Num[Array | np.ndarray, "*energies"],
    *,
    diag_shift: float | int | Real[Array | np.ndarray, ""],
    space: str = "auto",
) -> AbstractRBM:
    r"""The energy gradient preconditioned by stochastic reconfiguration (SR).

    With $Y$ the centred log-derivatives, $Y_{sp} = O_{sp} - \frac1n\sum_{s'} O_{s'p}$,
    $O_{sp} = \partial\log\psi(x_s)/\partial p$ (holomorphic derivatives for complex
    parameters), and $E_s$ the local energies of the $n$ samples, it returns the
    solution $\delta$ of

    $$(S + \lambda I)\,\delta = F,\qquad S = \frac{Y^\dagger Y}{n},\qquad
    F = \frac{Y^\dagger (E - \bar E)}{n},$$

    $\lambda$ the diagonal shift. $-\delta$ is the SR descent direction: pass
    $\delta$ to an optax optimiser as the gradient
    (`optimiser.update(delta, opt_state)`), or step with
    `jax.tree.map(lambda p, d: p - lr * d, model, delta)`. NetKet's `VMC_SR`
    update is $2\delta$, the gradient with respect to real parameters
    ($\partial \langle E\rangle / \partial\,\text{Re}\,p = 2\,\text{Re}\,F$).
    For real parameters and a real $\log\psi$ only the real part of the
    energies enters. Real parameters with a complex $\log\psi$ (complex
    `hidden_coefficients`, as in [`eqx_rbm.RBMModPhase`][]) take
    $S = \operatorname{Re}\,Y^\dagger Y/n$ and $F = \operatorname{Re}\,Y^\dagger(E - \bar E)/n$,
    as NetKet does for such models; in sample space the solve then has size $2n$.

    The two forms give the same $\delta$:

    - `"samples"`: by the push-through identity
      $\delta = Y^\dagger (Y Y^\dagger + n\lambda I)^{-1}(E - \bar E)$, a
      Cholesky solve of size $n$ on the closed-form kernel of
      [`eqx_rbm.Jacobian.kernel`][], then [`eqx_rbm.Jacobian.rmatvec`][];
      nothing of size $n \times n_\text{params}$ is formed for a dense RBM.
    - `"parameters"`: a Cholesky solve of size $n_\text{params}$ on $S + \lambda I$,
      formed from the dense rows ([`eqx_rbm.Jacobian.flat`][]).
    - `"auto"`: `"samples"` when $n < n_\text{params}$, else `"parameters"`.

    Called eagerly it runs as a few separately compiled programs (the Cholesky
    factorisation on its own); it also works inside `jax.jit` / `eqx.filter_jit`.

    **Arguments:**

    - `model`: any model of the family ([`eqx_rbm.RBM`][], [`eqx_rbm.RBMSymm`][], ...).
    - `x`: the samples, shape `(n_samples, n_sites)`.
    - `local_energies`: $E_s = \langle x_s|H|\psi\rangle / \langle x_s|\psi\rangle$,
      shape `(n_samples,)`, real or complex.
    - `diag_shift`: $\lambda > 0$, a Python number or a scalar array (a traced one
      under `jit`, so that a schedule does not recompile); checked to be
      positive and finite unless traced.
    - `space`: `"auto"`, `"samples"` or `"parameters"`, the space of the linear solve.

    **Returns:**

    $\delta$ as a pytree of the type and shapes of `model`, in its parameter dtype;
    a disabled bias stays `None`.
    """
    _check(x, local_energies, diag_shift, space)
    if space == "auto":
        n_rows = 2 * x.shape[0] if _split(model) else x.shape[0]
        space = "samples" if n_rows < n_params(model) else "parameters"
    shift = jnp.asarray(diag_shift)
    if space == "samples":
        kernel, de = _sample_system(model, x, local_energies, shift)
        return _push_back(model, x, _cholesky_solve(kernel, de))
    matrix, force = _parameter_system(model, x, local_energies, shift)
    return _unflatten(model, _cholesky_solve(matrix, force))
