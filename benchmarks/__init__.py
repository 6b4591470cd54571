"""Benchmarks of eqx_rbm against NetKet's models and the bare matrix product.

Run `python -m benchmarks --help`.
"""
