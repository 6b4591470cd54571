"""Model cases: forward passes, gradients, per-sample Jacobians and RBMMultiVal."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import eqx_rbm

from .common import DTYPES, EQX, GEMM, NETKET, Result, gemm, netket, rbm_pair, spins
from .timing import Candidate, Settings, timed


def _is_complex(dtype_name: str) -> bool:
    return dtype_name.startswith("complex")


def forward_cases(
    dtypes: list[str], ns: list[int], alphas: list[int], batches: list[int], s: Settings
) -> Iterator[Result]:
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for n in ns:
            for alpha in alphas:
                for batch in batches:
                    x = spins(jax.random.key(1), batch, n, dtype)
                    model, reference, params = rbm_pair(n, alpha, dtype, x)
                    medians, rounds = timed(
                        s,
                        {
                            EQX: Candidate(jax.jit(lambda m, x: m(x)), (model, x)),
                            NETKET: Candidate(jax.jit(reference.apply), (params, x)),
                            GEMM: gemm(x, model.kernel),
                        },
                    )
                    yield Result(
                        "RBM forward",
                        f"{dtype_name} N={n} alpha={alpha} batch={batch}",
                        {"dtype": dtype_name, "N": n, "alpha": alpha, "batch": batch},
                        medians,
                        rounds,
                    )


def grad_cases(dtypes: list[str], shapes: list[tuple[int, int, int]], s: Settings) -> Iterator[Result]:
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        # Complex parameters: log psi is holomorphic in them, as NetKet's RBM assumes.
        holomorphic = _is_complex(dtype_name)
        for n, alpha, batch in shapes:
            x = spins(jax.random.key(1), batch, n, dtype)
            model, reference, params = rbm_pair(n, alpha, dtype, x)
            eqx_grad = jax.jit(jax.grad(lambda m, x: jnp.mean(m(x)), holomorphic=holomorphic))
            nk_grad = jax.jit(
                jax.grad(lambda p, x, apply=reference.apply: jnp.mean(apply(p, x)), holomorphic=holomorphic)
            )
            medians, rounds = timed(
                s,
                {
                    EQX: Candidate(eqx_grad, (model, x)),
                    NETKET: Candidate(nk_grad, (params, x)),
                    GEMM: gemm(x, model.kernel),
                },
            )
            yield Result(
                "grad of mean log psi",
                f"{dtype_name} N={n} alpha={alpha} batch={batch}",
                {"dtype": dtype_name, "N": n, "alpha": alpha, "batch": batch},
                medians,
                rounds,
                notes="gemm: the forward product only" + ("; holomorphic" if holomorphic else ""),
            )


def _vmap_grad(apply: Callable, holomorphic: bool) -> Callable:
    return jax.vmap(jax.grad(apply, holomorphic=holomorphic), in_axes=(None, 0))


def _dense_kernel(model: eqx_rbm.RBM, x: jax.Array, holomorphic: bool) -> jax.Array:
    """The centred SR kernel from the dense (n, n_params) matrix that vmap(grad) builds."""
    tree = _vmap_grad(lambda m, s: m(s), holomorphic)(model, x)
    y = jax.vmap(lambda t: ravel_pytree(t)[0])(tree)
    y = y - jnp.mean(y, axis=0)
    return y @ y.conj().T


def jacobian_cases(dtypes: list[str], shapes: list[tuple[int, int, int]], s: Settings) -> Iterator[Result]:
    """Per-sample log-derivatives: closed form against vmap(grad), and the SR kernel."""
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        holomorphic = _is_complex(dtype_name)
        for n, alpha, batch in shapes:
            x = spins(jax.random.key(1), batch, n, dtype)
            model, reference, params = rbm_pair(n, alpha, dtype, x)
            candidates = {
                EQX: Candidate(jax.jit(eqx_rbm.log_derivatives), (model, x)),
                NETKET: Candidate(jax.jit(_vmap_grad(reference.apply, holomorphic)), (params, x)),
                GEMM: gemm(x, model.kernel),
                "vmap(grad)": Candidate(jax.jit(_vmap_grad(lambda m, s: m(s), holomorphic)), (model, x)),
                "flat": Candidate(jax.jit(lambda m, x: eqx_rbm.jacobian(m, x).flat()), (model, x)),
                "kernel": Candidate(
                    jax.jit(lambda m, x: eqx_rbm.jacobian(m, x, centred=True).kernel()), (model, x)
                ),
                "kernel via vmap(grad)": Candidate(
                    jax.jit(lambda m, x, h=holomorphic: _dense_kernel(m, x, h)), (model, x)
                ),
            }
            medians, rounds = timed(s, candidates)
            yield Result(
                "per-sample jacobian",
                f"{dtype_name} N={n} alpha={alpha} batch={batch}",
                {"dtype": dtype_name, "N": n, "alpha": alpha, "batch": batch},
                medians,
                rounds,
                notes="eqx_rbm: closed-form log_derivatives; netket: vmap(grad) of apply; "
                "flat: jacobian(...).flat(); kernel: the centred n x n kernel; gemm: the forward product",
                derived={
                    "closed_form_vs_vmap_grad": medians["vmap(grad)"] / medians[EQX],
                    "kernel_vs_dense": medians["kernel via vmap(grad)"] / medians["kernel"],
                },
            )


def _gathered_multival(model: eqx_rbm.RBMMultiVal) -> Callable[[jax.Array], jax.Array]:
    """The RBMMultiVal forward as a sum of gathered kernel rows, one site at a time.

    Does n_sites * n_hidden additions per sample instead of the one-hot
    product's n_sites * n_classes * n_hidden multiply-adds; timed to decide
    which formulation the model should use.
    """
    rbm = model.rbm
    n_sites, n_classes, n_hidden = model.n_sites, model.n_classes, rbm.n_hidden
    kernel = rbm.kernel.reshape(n_sites, n_classes, n_hidden)

    def forward(x: jax.Array) -> jax.Array:
        classes = jnp.argmax(model.one_hot.matches(x), axis=-1)

        def add_site(theta, site):
            return theta + kernel[site][classes[:, site]], None

        start = jnp.broadcast_to(rbm.hidden_bias, (x.shape[0], n_hidden))
        theta, _ = jax.lax.scan(add_site, start, jnp.arange(n_sites))
        out = jnp.sum(rbm.activation(theta), axis=-1)
        if rbm.visible_bias is not None:
            bias = rbm.visible_bias.reshape(n_sites, n_classes)
            out = out + jnp.sum(bias[jnp.arange(n_sites), classes], axis=-1)
        return out

    return forward


def multival_cases(
    classes: list[int], n: int, alpha: int, batch: int, s: Settings, *, gathered: bool
) -> Iterator[Result]:
    nk = netket()
    for n_classes in classes:
        key = jax.random.key(0)
        x = jax.random.randint(jax.random.key(1), (batch, n), 0, n_classes).astype(jnp.float64)
        model = eqx_rbm.RBMMultiVal(n, n_classes, alpha=alpha, key=key)
        reference = nk.models.RBMMultiVal(n_classes=n_classes, alpha=alpha)
        params = reference.init(key, x[:1])
        features = jnp.zeros((batch, n * n_classes))
        candidates = {
            EQX: Candidate(jax.jit(lambda m, x: m(x)), (model, x)),
            NETKET: Candidate(jax.jit(reference.apply), (params, x)),
            GEMM: gemm(features, model.rbm.kernel),
        }
        if gathered:
            candidates["gathered"] = Candidate(jax.jit(_gathered_multival(model)), (x,))
        medians, rounds = timed(s, candidates)
        yield Result(
            "RBMMultiVal forward",
            f"float64 n_classes={n_classes} N={n} alpha={alpha} batch={batch}",
            {"dtype": "float64", "n_classes": n_classes, "N": n, "alpha": alpha, "batch": batch},
            medians,
            rounds,
            notes="gemm: one-hot features times kernel"
            + ("; gathered: sum of kernel rows, scanned over sites" if gathered else ""),
        )
