"""eqx_rbm with orbax-checkpoint: save and restore an Equinox model and NetKet-layout variables.

An Equinox model is a pytree whose array leaves are its parameters; its
activation, precision and alpha are static structure that no checkpoint holds.
Save only the arrays (`eqx.partition`), and restore them into an abstract
template of the same model (`eqx.filter_eval_shape`: shapes and dtypes, no
computation), then put the static part back with `eqx.combine`.

The same parameters as NetKet-layout variables (`eqx_rbm.to_variables`) are
plain nested dicts, which orbax saves as they are; `eqx_rbm.from_variables`
turns the restored dict back into a model.

Run it as a script: `python docs/recipes/orbax_roundtrip.py`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

import eqx_rbm


def save_model(path: Path, model: eqx.Module) -> None:
    """Writes the array leaves of `model` to the new directory `path`."""
    arrays, _ = eqx.partition(model, eqx.is_array)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, arrays)


def restore_model(path: Path, template: eqx.Module) -> eqx.Module:
    """The model saved at `path`, given an abstract `template` from `eqx.filter_eval_shape`."""
    is_abstract = lambda leaf: isinstance(leaf, jax.ShapeDtypeStruct)  # noqa: E731
    abstract_arrays, static = eqx.partition(template, is_abstract)
    with ocp.StandardCheckpointer() as checkpointer:
        arrays = checkpointer.restore(path, abstract_arrays)
    return eqx.combine(arrays, static)


def save_variables(path: Path, variables: dict[str, Any]) -> None:
    """Writes a NetKet-layout variables dict (`eqx_rbm.to_variables`) to `path`."""
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, variables)


def restore_variables(path: Path) -> dict[str, Any]:
    """The variables dict saved at `path`; its layout is read from the checkpoint."""
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path)


def main() -> tuple[eqx_rbm.RBM, eqx_rbm.RBM, eqx_rbm.RBM]:
    """Round-trips a complex RBM both ways; returns the original and the two restored models."""
    jax.config.update("jax_enable_x64", True)

    def build(key: jax.Array) -> eqx_rbm.RBM:
        return eqx_rbm.RBM(16, alpha=2, param_dtype=jnp.complex128, key=key)

    model = build(jax.random.key(0))
    with tempfile.TemporaryDirectory() as tmp:
        save_model(Path(tmp) / "model", model)
        template = eqx.filter_eval_shape(build, jax.random.key(0))
        from_model = restore_model(Path(tmp) / "model", template)

        save_variables(Path(tmp) / "variables", eqx_rbm.to_variables(model))
        from_dict = eqx_rbm.from_variables(restore_variables(Path(tmp) / "variables"))

    for name, restored in [("partition + template", from_model), ("variables dict", from_dict)]:
        same = jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), model, restored))
        print(f"{name:22s} bit-identical parameters: {same}")
    return model, from_model, from_dict


if __name__ == "__main__":
    main()
