"""Shared fixtures: test data paths and small models."""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def random_linear_model(elements=("Cu",), order=3, max_degree=8, r_cut=5.0, seed=0, **kw):
    """A linear ACE model with random coefficients (smooth, decaying with degree)."""
    from aceal import ACEBasis, ACEModel

    basis = ACEBasis(elements=list(elements), order=order, max_degree=max_degree, r_cut=r_cut, **kw)
    rng = np.random.default_rng(seed)
    coef = rng.normal(size=len(basis)) * 0.05 / (1.0 + basis.degrees) ** 2
    return ACEModel(basis, coef, e0={el: -1.0 - 0.1 * k for k, el in enumerate(elements)})
