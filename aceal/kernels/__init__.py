"""Numba kernels: plain functions over arrays (neighbours, evaluation, design rows)."""
