"""eqx_rbm.netket against NetKet's interfaces: the protocol written against, a MetropolisSampler, errors."""

from __future__ import annotations

import inspect

import jax
import numpy as np
import pytest
from helpers import require

nk = require("netket")
import eqx_rbm  # noqa: E402
import eqx_rbm.linen  # noqa: E402
import eqx_rbm.netket  # noqa: E402


def test_is_a_netket_metropolis_sampler():
    hilbert = nk.hilbert.Spin(0.5, 6)
    sampler = eqx_rbm.netket.MetropolisLocal(hilbert)
    reference = nk.sampler.MetropolisLocal(hilbert)
    assert isinstance(sampler, nk.sampler.MetropolisSampler)
    for name in ("n_chains", "n_chains_per_rank", "sweep_size", "reset_chains", "chunk_size", "dtype"):
        assert getattr(sampler, name) == getattr(reference, name), name
    assert "method = 'auto'" in repr(sampler) and "SiteMoves()" in str(sampler)
    ring = nk.graph.Chain(6)
    exchange = eqx_rbm.netket.MetropolisExchange(hilbert, graph=ring)
    assert exchange.rule.pairs == tuple(sorted(ring.edges()))
    assert eqx_rbm.netket.MetropolisExchange(hilbert, graph=ring, d_max=2).rule.pairs == tuple(
        map(tuple, np.asarray(nk.sampler.rules.ExchangeRule(graph=ring, d_max=2).clusters).tolist())
    )
    assert eqx_rbm.netket.MetropolisExchange(hilbert, clusters=[(0, 5), (2, 3)]).rule.pairs == (
        (0, 5),
        (2, 3),
    )


def test_unsupported_models_and_arguments_are_named():
    hilbert = nk.hilbert.Spin(0.5, 6)
    sampler = eqx_rbm.netket.MetropolisLocal(hilbert, n_chains=16)
    with pytest.raises(TypeError, match=r"eqx_rbm models.*got the Flax module netket.models.*RBM"):
        nk.vqs.MCState(sampler, nk.models.RBM(alpha=1), n_samples=64)
    import equinox as eqx

    with pytest.raises(TypeError, match=r"got the Equinox module equinox\.nn.*Linear"):
        nk.vqs.MCState(sampler, eqx.nn.Linear(6, "scalar", key=jax.random.key(0)), n_samples=64)
    with pytest.raises(ValueError, match=r"machine_pow: .* \(machine_pow=2\), got 1"):
        eqx_rbm.netket.MetropolisLocal(hilbert, machine_pow=1)
    with pytest.raises(ValueError, match="machine_pow"):
        nk.vqs.MCState(sampler.replace(machine_pow=np.array(3.0)), eqx_rbm.linen.RBM(), n_samples=64).sample()
    with pytest.raises(ValueError, match="method: expected 'auto', 'fused' or 'portable'"):
        eqx_rbm.netket.MetropolisLocal(hilbert, method="gpu")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="single-site moves leave the constrained space"):
        eqx_rbm.netket.MetropolisLocal(nk.hilbert.Spin(0.5, 6, total_sz=0))
    with pytest.raises(TypeError, match="hilbert: expected a finite Hilbert space"):
        eqx_rbm.netket.MetropolisLocal(nk.hilbert.Fock(N=3))
    with pytest.raises(ValueError, match=r"pass exactly one of clusters .* or graph"):
        eqx_rbm.netket.MetropolisExchange(hilbert)
    with pytest.raises(
        ValueError, match=r"clusters: expected pairs of two distinct sites in \[0, 6\), got \[2, 6\]"
    ):
        eqx_rbm.netket.MetropolisExchange(hilbert, clusters=[(0, 1), (2, 6)])
    with pytest.raises(ValueError, match=r"probabilities: .* picks its pairs uniformly"):
        eqx_rbm.netket.MetropolisExchange(hilbert, clusters=[(0, 1)], probabilities=[1.0])


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_netket_sampler_protocol_is_the_one_written_against():
    """Fails loudly when NetKet changes what eqx_rbm.netket overrides or calls."""
    from netket.sampler import MetropolisSampler, MetropolisSamplerState, Sampler
    from netket.sampler.rules import MetropolisRule
    from netket.utils.model_frameworks import identify_framework
    from netket.utils.model_frameworks.equinox import EquinoxFramework, EquinoxWrapper

    def expect(what, got, wanted):
        assert got == wanted, (
            f"eqx_rbm.netket was written against NetKet {eqx_rbm.netket.NETKET_VERSION}'s sampler protocol; "
            f"NetKet {nk.__version__} changed {what}: expected {wanted!r}, got {got!r}. Update "
            "eqx_rbm/netket/_sampler.py (and NETKET_VERSION) to the new protocol"
        )

    expect(
        "the abstract methods of Sampler",
        Sampler.__abstractmethods__,
        {"_init_state", "_reset", "_sample_chain"},
    )
    expect("Sampler._init_state", _parameters(Sampler._init_state), ["self", "machine", "params", "seed"])
    expect("Sampler._reset", _parameters(Sampler._reset), ["self", "machine", "parameters", "state"])
    chain = ["self", "machine", "parameters", "state", "chain_length", "return_log_probabilities"]
    expect("Sampler._sample_chain", _parameters(Sampler._sample_chain), chain)
    expect("MetropolisSampler._sample_next", _parameters(MetropolisSampler._sample_next)[:4], chain[:4])
    expect(
        "MetropolisSampler.sample_next's call",
        "self._sample_next(" in inspect.getsource(MetropolisSampler.sample_next),
        True,
    )
    keywords = [
        "hilbert",
        "rule",
        "sweep_size",
        "reset_chains",
        "n_chains",
        "n_chains_per_rank",
        "chunk_size",
        "machine_pow",
        "dtype",
    ]
    expect("MetropolisSampler.__init__", _parameters(MetropolisSampler.__init__)[1:], keywords)
    expect(
        "MetropolisSamplerState.__init__",
        _parameters(MetropolisSamplerState.__init__),
        ["self", "\u03c3", "rng", "rule_state", "log_prob"],
    )
    fields = {"\u03c3", "rng", "log_prob", "rule_state", "n_steps_proc", "n_accepted_proc"}
    expect("MetropolisSamplerState's fields", fields - set(MetropolisSamplerState.__annotations__), set())
    expect("MetropolisRule's abstract methods", MetropolisRule.__abstractmethods__, {"transition"})
    expect(
        "MetropolisRule.random_state",
        _parameters(MetropolisRule.random_state),
        ["self", "sampler", "machine", "params", "sampler_state", "key"],
    )
    # What MCState hands the sampler as `machine`: the twin itself, or NetKet's Equinox wrapper.
    twin = eqx_rbm.linen.RBM()
    expect("the sampler's machine for a Flax module", identify_framework(twin).wrap(twin)[1] is twin, True)
    model = eqx_rbm.RBM(4, key=jax.random.key(0))
    variables, wrapper = identify_framework(model).wrap(model)
    expect("the sampler's machine for an Equinox module", type(wrapper), EquinoxWrapper)
    expect("EquinoxFramework.unwrap", EquinoxFramework.unwrap(wrapper, variables) == model, True)
    expect("the version", nk.__version__.startswith(eqx_rbm.netket.NETKET_VERSION + "."), True)


def test_rules_propose_the_moves_through_netkets_rule_interface():
    """The rules are valid NetKet rules on their own: `transition` proposes the sampler's moves."""
    key = jax.random.key(3)
    fock = nk.hilbert.Fock(n_max=2, N=4)
    local = eqx_rbm.netket.MetropolisLocal(fock, n_chains=64)
    x = np.asarray(fock.random_state(key, 64, dtype=local.dtype))
    proposed, correction = local.rule.transition(local, None, None, None, key, x)
    proposed = np.asarray(proposed)
    assert correction is None and proposed.dtype == x.dtype
    np.testing.assert_array_equal(np.sum(proposed != x, axis=-1), 1)
    assert set(np.unique(proposed).tolist()) <= {0, 1, 2}
    exchange = eqx_rbm.netket.MetropolisExchange(fock, clusters=[(0, 1), (2, 3)], n_chains=64)
    proposed, correction = exchange.rule.transition(exchange, None, None, None, key, x)
    proposed = np.asarray(proposed)
    swapped = [x.copy(), x.copy()]
    swapped[0][:, [0, 1]], swapped[1][:, [2, 3]] = x[:, [1, 0]], x[:, [3, 2]]
    assert correction is None
    assert np.all((proposed == swapped[0]).all(-1) | (proposed == swapped[1]).all(-1))
