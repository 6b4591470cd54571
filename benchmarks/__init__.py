"""Benchmarks of eqx_rbm against NetKet and the bare matrix product: `python -m benchmarks --help`."""
