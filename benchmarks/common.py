"""What every case shares: the result record, candidate names, inputs and model pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import eqx_rbm  # noqa: E402

from .timing import Candidate  # noqa: E402

EQX, NETKET, GEMM = "eqx_rbm", "netket", "gemm"
DTYPES = {
    "float32": jnp.float32,
    "float64": jnp.float64,
    "complex64": jnp.complex64,
    "complex128": jnp.complex128,
}
REAL_DTYPES = ("float32", "float64")


@dataclass
class Result:
    group: str
    case: str
    params: dict[str, Any]
    median_s: dict[str, float]
    rounds: int
    unit: str = "time"
    notes: str = ""
    derived: dict[str, float] = field(default_factory=dict)

    @property
    def vs_netket(self) -> float | None:
        """NetKet's time over eqx_rbm's: the throughput ratio."""
        if EQX in self.median_s and NETKET in self.median_s:
            return self.median_s[NETKET] / self.median_s[EQX]
        return None

    @property
    def vs_gemm(self) -> float | None:
        """eqx_rbm's time over the bare product's."""
        if EQX in self.median_s and GEMM in self.median_s:
            return self.median_s[EQX] / self.median_s[GEMM]
        return None


def netket() -> Any:
    import netket  # heavy and optional: only when timing it

    return netket


def spins(key: jax.Array, batch: int, n: int, dtype: Any) -> jax.Array:
    """Random +-1 configurations in the real precision matching `dtype`."""
    single = jnp.dtype(dtype) in (jnp.dtype(jnp.float32), jnp.dtype(jnp.complex64))
    real = jnp.float32 if single else jnp.float64
    return jax.random.choice(key, jnp.array([-1.0, 1.0], real), (batch, n))


def rbm_pair(n: int, alpha: int, dtype: Any, x: jax.Array) -> tuple[eqx_rbm.RBM, Any, Any]:
    """An eqx_rbm RBM and NetKet's, with NetKet's parameters initialised on `x`."""
    nk = netket()
    key = jax.random.key(0)
    model = eqx_rbm.RBM(n, alpha=alpha, param_dtype=dtype, key=key)
    reference = nk.models.RBM(alpha=alpha, param_dtype=dtype)
    params = reference.init(key, x[:1])
    return model, reference, params


def gemm(x: jax.Array, kernel: jax.Array) -> Candidate:
    """The bare product x @ W in the kernel's dtype: what any exact forward has to pay."""
    return Candidate(jax.jit(lambda x, w: x.astype(w.dtype) @ w), (x, kernel))
