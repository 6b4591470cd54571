"""RBM on one-hot encoded local states, NetKet's RBMMultiVal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jaxtyping import Array, Inexact, PRNGKeyArray, Real, jaxtyped

from ._checks import check_alpha, check_last_dim, check_param_dtype, check_positive_int, feature_dtype_for
from ._log_cosh import log_cosh
from ._one_hot import OneHot
from ._rbm import RBM, Initializer, default_init


class RBMMultiVal(eqx.Module):
    """RBM for sites with more than two local states, NetKet's `netket.models.RBMMultiVal`.

    Each site's local state is one-hot encoded by [`eqx_rbm.OneHot`][] into
    `n_classes` features, and the `n_sites * n_classes` features feed an
    [`eqx_rbm.RBM`][] with `n_hidden = int(alpha * n_sites * n_classes)`.

    Two deliberate differences from NetKet: a value outside `local_states` is
    an error instead of an all-zero feature row, and `precision` reaches the
    inner RBM (NetKet drops it).

    ```python
    import jax
    import jax.numpy as jnp
    import eqx_rbm

    jax.config.update("jax_enable_x64", True)
    model = eqx_rbm.RBMMultiVal(6, 4, key=jax.random.key(0))  # bosons, n_max = 3
    model(jnp.array([0, 1, 3, 2, 0, 0])).shape  # ()
    ```
    """

    one_hot: OneHot
    rbm: RBM

    def __init__(
        self,
        n_sites: int,
        n_classes: int,
        *,
        local_states: Sequence[float] | None = None,
        alpha: float | int = 1,
        use_hidden_bias: bool = True,
        use_visible_bias: bool = True,
        param_dtype: Any = jnp.float64,
        activation: Callable[[Array], Array] = log_cosh,
        precision: Any = None,
        kernel_init: Initializer = default_init,
        hidden_bias_init: Initializer = default_init,
        visible_bias_init: Initializer = default_init,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `n_sites`: number of sites (the length of an input configuration).
        - `n_classes`: number of local states per site, at least 2.
        - `local_states`: the values a site can take, in order; default
          `0, ..., n_classes - 1` (see [`eqx_rbm.OneHot`][]).
        - every other keyword, `key` included, is passed to [`eqx_rbm.RBM`][].
        """
        n_sites = check_positive_int("n_sites", n_sites)
        check_alpha(alpha)
        dtype = check_param_dtype(param_dtype)
        self.one_hot = OneHot(n_classes, local_states=local_states, dtype=feature_dtype_for(dtype))
        self.rbm = RBM(
            n_sites * self.one_hot.n_classes,
            alpha=alpha,
            use_hidden_bias=use_hidden_bias,
            use_visible_bias=use_visible_bias,
            param_dtype=dtype,
            activation=activation,
            precision=precision,
            kernel_init=kernel_init,
            hidden_bias_init=hidden_bias_init,
            visible_bias_init=visible_bias_init,
            key=key,
        )

    @property
    def n_sites(self) -> int:
        return self.rbm.n_visible // self.one_hot.n_classes

    @property
    def n_classes(self) -> int:
        return self.one_hot.n_classes

    @property
    def local_states(self) -> tuple[float | int, ...]:
        return self.one_hot.local_states

    @property
    def alpha(self) -> float | int:
        return self.rbm.alpha

    @property
    def n_hidden(self) -> int:
        return self.rbm.n_hidden

    @property
    def use_hidden_bias(self) -> bool:
        return self.rbm.use_hidden_bias

    @property
    def use_visible_bias(self) -> bool:
        return self.rbm.use_visible_bias

    @property
    def param_dtype(self) -> np.dtype:
        return self.rbm.param_dtype

    @jaxtyped(typechecker=beartype)
    def __call__(self, x: Real[Array | np.ndarray, "*batch n_sites"]) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: local states of shape `(*batch, n_sites)`, each one of `local_states`.

        **Returns:**

        $\\log\\psi(x)$ of shape `(*batch,)`.
        """
        if x.ndim and x.shape[-1] == self.rbm.n_visible != self.n_sites:
            raise ValueError(
                f"x: expected shape (*batch, n_sites) with n_sites={self.n_sites}, got shape "
                f"{tuple(x.shape)}; pass the site values themselves, not one-hot features "
                f"(n_sites * n_classes = {self.rbm.n_visible}): the model encodes them"
            )
        check_last_dim("x", x.shape, self.n_sites, "n_sites")
        return self.rbm(self.one_hot(x))


def inner_rbm(model: RBM | RBMMultiVal) -> RBM:
    """The RBM that computes `model`: itself, or an `RBMMultiVal`'s inner RBM."""
    return model.rbm if isinstance(model, RBMMultiVal) else model
