"""The eqx_rbm model behind what NetKet hands a sampler: a Flax twin, a wrapped Equinox module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import flax.linen as nn
from netket.utils.model_frameworks.equinox import EquinoxFramework, EquinoxWrapper

from ..linen._twins import Twin, to_equinox
from ..models._model import AbstractRBM

SUPPORTED = (
    "the eqx_rbm models: an Equinox model of the family (eqx_rbm.RBM, eqx_rbm.RBMMultiVal, ... any "
    "eqx_rbm.AbstractRBM) or a Flax twin (eqx_rbm.linen.RBM, eqx_rbm.linen.RBMMultiVal) given to "
    "nk.vqs.MCState as its model, or a twin's bound apply method given as apply_fun"
)


def _twin_of(machine: Any) -> Twin | None:
    if isinstance(machine, Twin):
        return machine
    # MCState(apply_fun=twin.apply) reaches samplers as a wrapper whose `apply` is the bound method.
    owner = getattr(getattr(machine, "apply", None), "__self__", None)
    return owner if isinstance(owner, Twin) else None


def rbm_of(machine: Any, variables: Any) -> AbstractRBM:
    """The Equinox model that `machine` evaluates with `variables`.

    **Arguments:**

    - `machine`: what NetKet passes to a sampler as the model (the `machine`
      argument of `Sampler._sample_chain`): a Flax twin, NetKet's wrapper of an
      Equinox module, or a wrapped apply function.
    - `variables`: the variables NetKet passes with it (`MCState.variables`).

    **Returns:**

    The [`eqx_rbm.AbstractRBM`][] holding `variables`' arrays; under `jax.jit`
    they are the traced parameters, so the model follows every VMC step.

    **Raises:**

    `TypeError` for any other model, naming the supported ones.
    """
    twin = _twin_of(machine)
    if twin is not None:
        if not isinstance(variables, Mapping):
            raise TypeError(
                f"parameters: expected the twin's variables {{'params': ...}}, got {type(variables).__name__}"
            )
        # Any twin: to_equinox reads the layout from the twin itself.
        return to_equinox(cast(Any, twin), variables)
    if isinstance(machine, EquinoxWrapper):
        model = EquinoxFramework.unwrap(machine, variables)
        if isinstance(model, AbstractRBM):
            return model
        raise TypeError(
            f"model: eqx_rbm.netket's samplers run local updates of {SUPPORTED}; "
            f"got the Equinox module {type(model).__module__}.{type(model).__qualname__}. "
            "Use nk.sampler.MetropolisLocal for other models"
        )
    raise TypeError(
        f"model: eqx_rbm.netket's samplers run local updates of {SUPPORTED}; got {_describe(machine)}. "
        "Use nk.sampler.MetropolisLocal for other models"
    )


def _describe(machine: Any) -> str:
    if isinstance(machine, nn.Module):
        return f"the Flax module {type(machine).__module__}.{type(machine).__qualname__}"
    return repr(machine)
