r"""Symmetric RBMs: filters tied over a group of site permutations, NetKet's RBMSymm.

A table $P$ of shape `(n_symmetries, n_sites)` lists site permutations. Each of
the $F$ filters $W_f$ (one weight per site feature) is applied once per group
element $g$,

$$\theta_{fg} = b_f + \sum_{j,c} \phi_c(x_j)\, W_{f,c,P_{gj}},$$

so that, in the dense view, the kernel is `(n_features, F * G)` with column
`f * G + g`, NetKet's `(F, G)` hidden layout flattened.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any, ClassVar, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray

from ..numerics._log_cosh import log_cosh
from ._build import build, given_arrays
from ._encoding import Spins
from ._model import AbstractRBM
from ._parts import Dense, Flags, Initializer, Inits, Parameters, initialise, replace_parameters
from ._permutations import (
    PermutationTable,
    check_filters,
    check_given_alpha,
    check_kernel_shape,
    check_symmetries,
)
from ._symm_variables import symm_problems
from ._variables_checks import Loading, VariablesError, layout_arrays, layout_tree

symm_default_init: Initializer = jax.nn.initializers.normal(stddev=0.1)
"""Normal with standard deviation 0.1: NetKet's default for every RBMSymm parameter."""


def _flax_key(key: PRNGKeyArray, *data: str | int) -> PRNGKeyArray:
    """The key Flax's `init` hands a parameter at scope path and creation count `data`.

    Flax folds the SHA-1 of the path and counter into the key it was given;
    doing the same here makes the same key give NetKet's variables without
    importing Flax.
    """
    flax = sys.modules.get("flax")
    separator = bool(getattr(getattr(flax, "config", None), "flax_fix_rng_separator", False))
    digest = hashlib.sha1()
    for item in data:
        if separator:
            digest.update(b"\00")
        digest.update(item.encode() if isinstance(item, str) else item.to_bytes((item.bit_length() + 7) // 8))
    return jax.random.fold_in(key, np.uint32(int.from_bytes(digest.digest()[:4], "big")))


def symm_given(
    kernel: Array,
    hidden_bias: Any,
    visible_bias: Any,
    alpha: float | int | None,
    symmetries: Any,
    n_classes: int | None,
) -> tuple[PermutationTable, dict[str, Any]]:
    """`from_arrays` of a symmetric model: its table and the `__init__` keywords holding the arrays.

    `n_classes` is `None` for spins (one feature per site).
    """
    table = check_symmetries(symmetries)
    per_site = 1 if n_classes is None else n_classes
    n_filters = check_kernel_shape(kernel, table, per_site, "1" if n_classes is None else "n_classes")
    alpha = check_given_alpha(alpha, n_filters, table.n_sites * per_site, table)
    return table, given_arrays(kernel, hidden_bias, visible_bias, alpha)


def tie(
    kernel: Array, hidden_bias: Array | None, visible_bias: Array | None, table: PermutationTable
) -> Dense:
    """The dense view of symmetric parameters: every filter once per permutation."""
    n_filters, per_site, n_sites = kernel.shape
    # tied[f, c, g, j] = kernel[f, c, P[g, j]]
    tied = jnp.take(kernel, table.array, axis=2)
    dense_kernel = tied.transpose(3, 1, 0, 2).reshape(n_sites * per_site, n_filters * table.n_symmetries)
    hidden = None if hidden_bias is None else jnp.repeat(hidden_bias, table.n_symmetries)
    visible = None if visible_bias is None else jnp.tile(visible_bias, n_sites)
    return Dense(dense_kernel, hidden, visible)


def _real_product(spec: str, a: Array, real: Array, precision: Any) -> Array:
    """`einsum(spec, a, real)` for a real second operand: two real products when `a` is complex."""
    if jnp.iscomplexobj(a):
        return jax.lax.complex(
            jnp.einsum(spec, a.real, real, precision=precision),
            jnp.einsum(spec, a.imag, real, precision=precision),
        )
    return jnp.einsum(spec, a, real, precision=precision)


class AbstractSymmRBM(AbstractRBM, strict=True):
    """A model of the RBM family whose hidden units are filters tied over site permutations.

    `kernel` has shape `(n_filters, features_per_site, n_sites)`,
    `hidden_bias` `(n_filters,)` and `visible_bias` `(features_per_site,)`
    (one weight per feature, shared by every site). NetKet stores them
    under `params/Dense/bias`, `params/Dense/kernel` and `params/visible_bias`.
    """

    symmetries: eqx.AbstractVar[PermutationTable]
    factorised_kernel: ClassVar[bool] = False

    @property
    def n_sites(self) -> int:
        return self.kernel.shape[-1]

    @property
    def n_filters(self) -> int:
        """Number of filters $F$, `int(alpha * n_features / n_symmetries)`."""
        return self.kernel.shape[0]

    @property
    def n_symmetries(self) -> int:
        """Number of permutations $G$, the rows of `symmetries`."""
        return self.symmetries.n_symmetries

    def dense(self) -> Dense:
        """The dense view: kernel `(n_features, n_filters * n_symmetries)`, column `f * G + g`."""
        return tie(self.kernel, self.hidden_bias, self.visible_bias, self.symmetries)

    def from_dense_gradient(self, gradient: Dense) -> Self:
        """Sums a dense-view gradient over the entries tied to each parameter (the transpose of `dense`)."""
        n_filters, per_site, n_sites = self.kernel.shape
        n_symmetries = self.n_symmetries
        kernel = None
        if gradient.kernel is not None:
            batch = gradient.kernel.shape[:-2]
            # by_group[..., g, j, c, f] = gradient[..., j * C + c, f * G + g]
            by_group = jnp.moveaxis(
                gradient.kernel.reshape(*batch, n_sites, per_site, n_filters, n_symmetries), -1, -4
            )
            # kernel[f, c, r] = sum_g gradient[(P^-1[g, r], c), (f, g)]: a gather, no scatter.
            groups = np.arange(n_symmetries)[:, None]
            gathered = by_group[..., groups, self.symmetries.inverse, :, :]  # (..., G, N, C, F)
            kernel = jnp.swapaxes(jnp.sum(gathered, axis=-4), -3, -1)  # (..., F, C, N)
        hidden = gradient.hidden_bias
        if hidden is not None:
            hidden = jnp.sum(hidden.reshape(*hidden.shape[:-1], n_filters, n_symmetries), axis=-1)
        visible = gradient.visible_bias
        if visible is not None:
            visible = jnp.sum(visible.reshape(*visible.shape[:-1], n_sites, per_site), axis=-2)
        return replace_parameters(self, kernel, hidden, visible)

    def log_derivative_rows(self, features: Array, dactivation: Array) -> Self:
        n_filters, per_site, n_sites = self.kernel.shape
        batch = features.shape[:-1]
        phi = features.reshape(*batch, n_sites, per_site)
        # permuted[..., g, r, c] = phi[..., P^-1[g, r], c], the site that filter entry r meets under g
        permuted = jnp.take(phi, self.symmetries.inverse, axis=-2)
        dtheta = dactivation.reshape(*batch, n_filters, self.n_symmetries)
        kernel = _real_product("...fg,...grc->...fcr", dtheta, permuted, self.precision)
        hidden = jnp.sum(dtheta, axis=-1) if self.use_hidden_bias else None
        visible = jnp.sum(phi, axis=-2) if self.use_visible_bias else None
        return replace_parameters(self, kernel, hidden, visible)

    def draw_parameters(
        self, n_sites: int, flags: Flags, dtype: Any, inits: Inits, key: PRNGKeyArray
    ) -> Parameters:
        """The keys NetKet's `init` uses: `Dense/bias`, then `Dense/kernel`, then `visible_bias`.

        Flax numbers the parameters of each scope in creation order.
        """
        per_site = self.encoding.features_per_site
        n_filters = check_filters(self.alpha, n_sites * per_site, self.symmetries)
        use_hidden_bias, use_visible_bias = flags
        kernel_init, hidden_init, visible_init = inits
        hidden = (
            initialise("hidden_bias_init", hidden_init, _flax_key(key, "Dense", 1), (n_filters,), dtype)
            if use_hidden_bias
            else None
        )
        kernel_key = _flax_key(key, "Dense", 2 if use_hidden_bias else 1)
        kernel = initialise("kernel_init", kernel_init, kernel_key, (n_filters, per_site, n_sites), dtype)
        visible = (
            initialise("visible_bias_init", visible_init, _flax_key(key, 1), (per_site,), dtype)
            if use_visible_bias
            else None
        )
        return kernel, hidden, visible

    def layout(self) -> dict[str, Any]:
        return {"symmetries": self.symmetries, **self.encoding.layout()}

    def params_tree(self) -> dict[str, Any]:
        return layout_tree(self.kernel, self.hidden_bias, self.visible_bias, bias_first=True)

    @classmethod
    def from_params(cls, params: Any, problems: list[str], layout: dict[str, Any], loading: Loading) -> Self:
        table = check_symmetries(layout["symmetries"])
        problems = problems + symm_problems(params, table, layout.get("n_classes"), loading)
        if problems:
            raise VariablesError("variables", problems)
        return cls.from_arrays(
            *layout_arrays(params), **{**layout, "symmetries": table}, **loading.settings()
        )


class RBMSymm(AbstractSymmRBM, strict=True):
    r"""RBM whose hidden units are filters tied over a symmetry group, NetKet's `netket.models.RBMSymm`.

    $$\log\psi(x) = a \sum_j x_j + \sum_{f,g} f\Big(b_f + \sum_j W_{f,P_{gj}}\, x_j\Big)$$

    with $P$ = `symmetries` (a `(G, N)` table of site permutations), $F$
    = `n_filters` filters $W_f$ (`kernel`, shape `(F, 1, N)` as in NetKet),
    $b$ = `hidden_bias` `(F,)` and $a$ = `visible_bias` `(1,)`. When the rows
    of $P$ form a group, $\log\psi(x_{P_g}) = \log\psi(x)$ for every $g$.
    The same `key` gives the same parameters as NetKet's `init`.

    ```python
    import jax
    import jax.numpy as jnp
    import netket as nk
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    group = nk.graph.Chain(8).translation_group()
    model = eqx_rbm.RBMSymm(group, alpha=2, key=jax.random.key(0))
    model.kernel.shape  # (2, 1, 8): int(alpha * 8 / 8) filters
    model(jnp.ones((5, 8))).shape  # (5,)
    ```
    """

    kernel: Inexact[Array, "n_filters 1 n_sites"]
    hidden_bias: Inexact[Array, " n_filters"] | None
    visible_bias: Inexact[Array, " 1"] | None
    symmetries: PermutationTable = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    precision: Any = eqx.field(static=True)
    alpha: float | int = eqx.field(static=True)
    encoding: Spins  # pyright: ignore[reportIncompatibleVariableOverride]
    """Each site's value is its feature; samplers propose `(-1, 1)`."""
    layout_keywords: ClassVar[frozenset[str]] = frozenset({"symmetries"})
    twin_name: ClassVar[str] = "RBMSymm"

    def __init__(
        self,
        symmetries: Any,
        *,
        alpha: float | int = 1,
        use_hidden_bias: bool = True,
        use_visible_bias: bool = True,
        param_dtype: Any = jnp.float64,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
        kernel_init: Initializer = symm_default_init,
        hidden_bias_init: Initializer = symm_default_init,
        visible_bias_init: Initializer = symm_default_init,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `symmetries`: the `(n_symmetries, n_sites)` table of site permutations:
          a NetKet `PermutationGroup` (`graph.translation_group()`,
          `graph.space_group()`, `graph.automorphisms()`), a `HashableArray`,
          or an integer array whose every row is a permutation of `range(n_sites)`.
        - `alpha`: feature density; `n_filters = int(alpha * n_sites / n_symmetries)`
          as in NetKet, at least 1.
        - `use_hidden_bias`, `use_visible_bias`, `param_dtype`, `activation`,
          `precision`: as for [`eqx_rbm.RBM`][].
        - `kernel_init`, `hidden_bias_init`, `visible_bias_init`: initializers
          `(key, shape, dtype)`; NetKet's default, normal with standard deviation 0.1.
        - `key`: a `jax.random` key, keyword-only.
        """
        self.symmetries = check_symmetries(symmetries)
        inits = (kernel_init, hidden_bias_init, visible_bias_init)
        flags = (use_hidden_bias, use_visible_bias)
        n_sites = self.symmetries.n_sites
        build(self, Spins(), n_sites, alpha, flags, param_dtype, activation, precision, inits, key)

    @classmethod
    def from_arrays(
        cls,
        kernel: ArrayLike,
        hidden_bias: ArrayLike | None = None,
        visible_bias: ArrayLike | None = None,
        *,
        symmetries: Any,
        alpha: float | int | None = None,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
    ) -> RBMSymm:
        """An `RBMSymm` holding the given arrays as they are (tracers included).

        **Arguments:**

        - `kernel`: shape `(n_filters, 1, n_sites)`, floating or complex.
        - `hidden_bias`, `visible_bias`: shapes `(n_filters,)` and `(1,)`, or
          `None` for a model without that bias.
        - `symmetries`: as for `__init__`.
        - `alpha`: `None` infers the smallest one giving `n_filters`; a given
          value must satisfy `int(alpha * n_sites / n_symmetries) == n_filters`.
        - `activation`, `precision`: as for `__init__`.

        **Returns:**

        The `RBMSymm`, built through `__init__` so that every check runs.
        """
        table, given = symm_given(jnp.asarray(kernel), hidden_bias, visible_bias, alpha, symmetries, None)
        return cls(table, activation=activation, precision=precision, **given)
