r"""Closed-form log-derivatives of RBMs and the factorised SR kernel.

With $\theta = xW + b$ and $f$ the activation, the log-derivatives of
$\log\psi(x) = \sum_h f(\theta_h) + x\cdot a$ are

$$\partial_a \log\psi = x,\qquad \partial_b \log\psi = f'(\theta),\qquad
\partial_W \log\psi = x \otimes f'(\theta),$$

so a batch of per-sample derivatives is described by two small matrices, the
features $X$ (`n_samples by n_features`) and $F = f'(\theta)$
(`n_samples by n_hidden`), instead of `n_samples by n_params` numbers.
These are the factors of the dense view; a model maps them to its own
parameters (`log_derivative_rows`, `from_dense_gradient`), summing over the
tied entries of a symmetric model.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jaxtyping import Array, Inexact, Num, Real, jaxtyped

from ..internal._checks import check_numeric
from ..internal._sharding import batch_contract, gram, replicated
from ..models._model import AbstractRBM
from ..models._parts import dense_theta, gradient_like, grouped_scale


def _factors(model: AbstractRBM, x: Array | np.ndarray) -> tuple[Array, Array]:
    """The features $X$ (real, in the computation's real dtype) and $F = c_g f'(\\theta)$.

    Each hidden unit's derivative is weighted by its group's coefficient
    (`hidden_coefficients`): $\\partial\\log\\psi / \\partial\\theta_h = c_g f'(\\theta_h)$.
    """
    check_numeric("x", x, allow_complex=False)
    features = model.encode(x)
    dense = model.dense()
    theta = dense_theta(features, dense.kernel, dense.hidden_bias, model.precision)
    # f'(theta) element-wise through the activation's own JVP (tanh for log_cosh),
    # so user activations with a custom_jvp are honoured as well.
    dactivation = jax.jvp(model.activation, (theta,), (jnp.ones_like(theta),))[1]
    dactivation = grouped_scale(model.hidden_coefficients, dactivation)
    return features.astype(jnp.finfo(theta.dtype).dtype), dactivation


@jaxtyped(typechecker=beartype)
def log_derivatives(model: AbstractRBM, x: Num[Array | np.ndarray, "*batch n_sites"]) -> AbstractRBM:
    r"""Per-sample log-derivatives $\partial \log\psi(x) / \partial\,\text{parameters}$ in closed form.

    The same numbers as `jax.vmap(eqx.filter_grad(lambda m, s: m(s)), in_axes=(None, 0))`
    (holomorphic derivatives for complex parameters) without a backward pass:
    $\partial_a = x$, $\partial_b = f'(\theta)$, $\partial_W = x \otimes f'(\theta)$
    with $f'$ taken from the activation's JVP. For an `RBMMultiVal`, $x$ is
    the one-hot feature vector.

    **Arguments:**

    - `model`: any model of the family ([`eqx_rbm.RBM`][], [`eqx_rbm.RBMMultiVal`][], ...).
    - `x`: configurations of shape `(*batch, n_sites)` (real: integer or
      floating); for an `RBMMultiVal`, elements of `local_states`.

    **Returns:**

    A pytree of the same type as `model` whose array leaves have the leading
    `*batch` dimensions prepended (`kernel` of shape
    `(*batch, n_features, n_hidden)` for a dense model, and so on), in the
    dtype of $\\log\\psi$ (`model.log_psi_dtype`: the parameters' dtype, or
    complex for real parameters with complex `hidden_coefficients`, whose
    $\\log\\psi$ is complex);
    a disabled bias stays `None`. For a large batch prefer
    [`eqx_rbm.jacobian`][], which never forms the `kernel` block.
    """
    features, dactivation = _factors(model, x)
    return _cast(model.log_derivative_rows(features, dactivation), model.log_psi_dtype)


def n_params(model: AbstractRBM) -> int:
    """The model's parameter count, disabled biases excluded."""
    return sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda leaf: leaf.astype(dtype), tree)


class Jacobian(eqx.Module):
    r"""The per-sample log-derivatives of a batch, kept factorised.

    Row $s$ of the Jacobian $O$ is $O_s = \partial\log\psi(x_s)/\partial\,
    \text{parameters}$ (or, when `centred`, $O_s - \frac1n\sum_{s'} O_{s'}$).
    Only the features $X$ and $F = f'(\theta)$ are stored; the
    `n_samples by n_params` matrix is formed only by [`flat`][eqx_rbm.Jacobian.flat]
    and [`tree`][eqx_rbm.Jacobian.tree], and by [`kernel`][eqx_rbm.Jacobian.kernel]
    for a model without `factorised_kernel` (a symmetric one, whose
    parameters are few). Build it with [`eqx_rbm.jacobian`][].
    """

    model: AbstractRBM
    features: Real[Array, "n_samples n_features"]
    dactivation: Inexact[Array, "n_samples n_hidden"]
    features_mean: Real[Array, " n_features"] | None
    dactivation_mean: Inexact[Array, " n_hidden"] | None

    @property
    def centred(self) -> bool:
        """Whether the rows are centred, $O_s - \\bar O$."""
        return self.features_mean is not None

    @property
    def n_samples(self) -> int:
        """Number of rows (samples)."""
        return self.features.shape[0]

    @property
    def n_params(self) -> int:
        """Number of columns: the model's parameter count, disabled biases excluded."""
        return n_params(self.model)

    def kernel(self, *, conjugate: bool = True) -> Inexact[Array, "n_samples n_samples"]:
        r"""The Gram matrix $K = O O^\dagger$, $K_{ss'} = O_s \cdot \overline{O_{s'}}$.

        With `conjugate=False`, $O O^T$ ($O_s \cdot O_{s'}$) instead: for real
        parameters with a complex $O$, the real and imaginary parts of the rows
        make $\operatorname{Re} O \operatorname{Re} O^T = \operatorname{Re}(OO^\dagger + OO^T)/2$
        and so on, as [`eqx_rbm.sr_gradient`][] uses them.

        For a model with `factorised_kernel` (the dense RBMs), from the factorisation
        $O_s\cdot\overline{O_{s'}} = X_s\cdot X_{s'} + F_s\cdot\overline{F_{s'}}
        + (X_s\cdot X_{s'})(F_s\cdot\overline{F_{s'}})$ (bias terms only where the
        biases are enabled), in $O(n^2(n_\text{visible} + n_\text{hidden}))$.
        Centred, it is $(I - \mathbf{1}\mathbf{1}^T/n)\,K\,(I - \mathbf{1}\mathbf{1}^T/n)$:
        the bias blocks use centred features, and the kernel block subtracts the
        closed-form row and column means (see the derivatives page). For a
        model whose dense view ties parameters (`factorised_kernel` false), the
        Gram matrix of the rows from [`flat`][eqx_rbm.Jacobian.flat], in
        $O(n^2 n_\text{params})$ (see the symmetric-models page).

        **Returns:**

        A `(n_samples, n_samples)` matrix, Hermitian (symmetric with
        `conjugate=False`), rows sharded like the samples.
        """
        rbm = self.model
        conj = jnp.conj if conjugate else lambda a: a
        if not rbm.factorised_kernel:
            rows = self.flat()
            return gram(rows, conj(rows), rbm.precision)
        x, f = self.features, self.dactivation
        gx = gram(x, x, rbm.precision)
        gf = gram(f, conj(f), rbm.precision)
        out = gx * gf
        if self.features_mean is not None and self.dactivation_mean is not None:
            # Mean of the kernel block, M = X^T F / n; row s of K has mean u_s = X_s conj(M) F_s.
            mean = batch_contract(x, f, rbm.precision) / self.n_samples
            row_mean = jnp.sum(jnp.matmul(x, conj(mean), precision=rbm.precision) * f, axis=-1)
            column_mean = conj(replicated(row_mean))
            total = jnp.sum(jnp.abs(mean) ** 2) if conjugate else jnp.sum(mean * mean)
            out = out - row_mean[:, None] - column_mean[None, :] + total
            x, f = x - self.features_mean, f - self.dactivation_mean
            if rbm.use_hidden_bias:
                out = out + gram(f, conj(f), rbm.precision)
            if rbm.use_visible_bias:
                out = out + gram(x, x, rbm.precision)
        else:
            if rbm.use_hidden_bias:
                out = out + gf
            if rbm.use_visible_bias:
                out = out + gx
        return out

    def rmatvec(self, v: Num[Array | np.ndarray, " n_samples"]) -> AbstractRBM:
        r"""$O^\dagger v = \sum_s \overline{O_s}\, v_s$, as a model-shaped pytree.

        The kernel block is $X^T \operatorname{diag}(v)\, \overline{F}$; when
        centred, $Y^\dagger v = O^\dagger (v - \bar v)$.

        **Arguments:**

        - `v`: a vector of shape `(n_samples,)`.

        **Returns:**

        A pytree of the type of the model (no batch dimension), in the dtype
        `v` and the derivatives promote to.
        """
        v = self._check_vector(v)
        if self.centred:
            v = v - jnp.mean(v)
        rbm = self.model
        x, fc = self.features, jnp.conj(self.dactivation)
        kernel = batch_contract(x * v[:, None], fc, rbm.precision)
        return gradient_like(
            self.model,
            kernel,
            batch_contract(fc, v, rbm.precision) if rbm.use_hidden_bias else None,
            batch_contract(x, v, rbm.precision).astype(kernel.dtype) if rbm.use_visible_bias else None,
        )

    def matvec(self, p: AbstractRBM) -> Inexact[Array, " n_samples"]:
        r"""$O p$, that is $O_s \cdot p$ for every sample (no conjugation).

        **Arguments:**

        - `p`: a pytree shaped like the model (for instance a parameter update).

        **Returns:**

        A vector of shape `(n_samples,)`.
        """
        rbm = self.model
        # O p = O_dense dense(p): the dense view is linear in the parameters.
        prbm = self._check_tree(p).dense()
        x, f = self.features, self.dactivation
        out = jnp.sum(jnp.matmul(x, prbm.kernel, precision=rbm.precision) * f, axis=-1)
        if prbm.hidden_bias is not None:
            out = out + jnp.matmul(f, prbm.hidden_bias, precision=rbm.precision)
        if prbm.visible_bias is not None:
            out = out + jnp.matmul(x, prbm.visible_bias, precision=rbm.precision)
        return out - jnp.mean(out) if self.centred else out

    def tree(self) -> AbstractRBM:
        """The rows as a model-shaped pytree with a leading `n_samples` dimension,
        as [`eqx_rbm.log_derivatives`][] returns them (centred if `centred`).
        This forms the `(n_samples, *kernel.shape)` kernel block."""
        rbm = self.model
        x, f = self.features, self.dactivation
        rows = rbm.log_derivative_rows(x, f)
        if self.features_mean is not None and self.dactivation_mean is not None:
            # The mean row is the dense view's mean mapped back (the map is linear).
            mean = gradient_like(
                rbm,
                batch_contract(x, f, rbm.precision) / self.n_samples,
                self.dactivation_mean,
                self.features_mean,
            )
            rows = jax.tree.map(lambda row, m: row - m, rows, mean)
        return _cast(rows, rbm.log_psi_dtype)

    def flat(self) -> Inexact[Array, "n_samples n_params"]:
        """The dense `(n_samples, n_params)` matrix, columns in the order of
        `jax.flatten_util.ravel_pytree(eqx.filter(model, eqx.is_inexact_array))`."""
        leaves = jax.tree.leaves(eqx.filter(self.tree(), eqx.is_inexact_array))
        return jnp.concatenate([leaf.reshape(self.n_samples, -1) for leaf in leaves], axis=-1)

    def _check_vector(self, v: Array | np.ndarray) -> Array:
        check_numeric("v", v, allow_complex=True)
        if v.shape != (self.n_samples,):
            raise ValueError(
                f"v: expected one entry per sample, shape ({self.n_samples},), got shape {tuple(v.shape)}"
            )
        return jnp.asarray(v)

    def _check_tree(self, p: AbstractRBM) -> AbstractRBM:
        if type(p) is not type(self.model):
            raise TypeError(
                f"p: expected a pytree of type {type(self.model).__name__} shaped like the model, "
                f"got {type(p).__name__}"
            )

        def shapes(rbm: AbstractRBM) -> list:
            return [
                None if a is None else tuple(a.shape) for a in (rbm.kernel, rbm.hidden_bias, rbm.visible_bias)
            ]

        expected, got = shapes(self.model), shapes(p)
        if expected != got:
            raise ValueError(
                "p: expected the model's (kernel, hidden_bias, visible_bias) shapes "
                f"{expected} (None: a disabled bias), got {got}"
            )
        return p


@jaxtyped(typechecker=beartype)
def jacobian(model: AbstractRBM, x: Num[Array | np.ndarray, "*shape"], *, centred: bool = False) -> Jacobian:
    r"""The factorised Jacobian $O_{s,p} = \partial\log\psi(x_s)/\partial p$ of a batch.

    Nothing of size `n_samples by n_params` is formed: the kernel, $O^\dagger v$
    and $O p$ are computed from the factors (see [`eqx_rbm.Jacobian`][]).

    Stochastic reconfiguration with diagonal shift $\lambda$ solves
    $(S + \lambda)\,\delta = g$ with $S = Y^\dagger Y/n$, $g = Y^\dagger(E - \bar E)/n$
    and $Y$ the centred Jacobian; by the push-through identity
    $\delta = Y^\dagger (Y Y^\dagger + n\lambda)^{-1}(E - \bar E)$, an
    `n_samples by n_samples` solve, which [`eqx_rbm.sr_gradient`][] does for you:

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    model = eqx_rbm.RBM(10, alpha=2, key=jax.random.key(0))
    x = jax.random.choice(jax.random.key(1), jnp.array([-1.0, 1.0]), (64, 10))
    e_loc = jax.random.normal(jax.random.key(2), (64,))  # local energies
    n, shift = x.shape[0], 1e-2

    J = eqx_rbm.jacobian(model, x, centred=True)
    w = jnp.linalg.solve(J.kernel() + n * shift * jnp.eye(n), e_loc - e_loc.mean())
    update = J.rmatvec(w)  # an RBM-shaped pytree: delta
    model = jax.tree.map(lambda p, d: p - 0.05 * d, model, update)
    ```

    **Arguments:**

    - `model`: any model of the family ([`eqx_rbm.RBM`][], [`eqx_rbm.RBMMultiVal`][], ...).
    - `x`: configurations of shape `(n_samples, n_sites)`, one batch dimension;
      for an `RBMMultiVal`, elements of `local_states`.
    - `centred`: subtract the mean over the samples from every row, as SR needs.

    **Returns:**

    An [`eqx_rbm.Jacobian`][].
    """
    if x.ndim != 2:
        raise ValueError(
            "x: expected one batch dimension, shape (n_samples, n_sites); reshape it with "
            f"x.reshape(-1, x.shape[-1]). Got shape {tuple(x.shape)}"
        )
    features, dactivation = _factors(model, x)
    if centred:
        return Jacobian(
            model, features, dactivation, jnp.mean(features, axis=0), jnp.mean(dactivation, axis=0)
        )
    return Jacobian(model, features, dactivation, None, None)
