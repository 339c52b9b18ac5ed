"""Calibration of a committee's spread against labelled data.

A committee drawn from the Bayesian posterior inherits its noise model: where the model is
misspecified (most of the time for a finite basis), the spread underestimates the actual
error. :func:`committee_scale` is the maximum-likelihood factor ``s`` for Gaussian errors
with standard deviation ``s * sigma`` on labelled configurations (Imbalzano et al., J.
Chem. Phys. 154, 074102 (2021)): ``s**2 = mean(err**2 / sigma**2)`` is replaced by its
pooled form ``sum err**2 / sum sigma**2`` over force components, which does not blow up
where a component's spread is tiny. :func:`rescale_committee` applies it to the members.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

__all__ = ["committee_scale", "rescale_committee"]


def committee_scale(model, frames: Sequence[Atoms]) -> float:
    """Factor by which the committee's force spread must grow to match the force errors.

    Parameters
    ----------
    model
        :class:`aceal.model.ACEModel` with a committee (at least 2 members).
    frames
        Configurations with reference forces (eV/Å) attached (``atoms.get_forces()``).

    Returns
    -------
    float
        ``sqrt(sum (F_model - F_ref)**2 / sum var_committee(F))`` over every force
        component of every frame (dimensionless; 1 means calibrated).
    """
    from aceal.calculator import ACECalculator

    calc = ACECalculator(model)
    err2 = var = 0.0
    for atoms in frames:
        ref = np.asarray(atoms.get_forces(), dtype=float)
        a = atoms.copy()
        a.calc = calc
        forces = a.get_forces()
        members = calc.results["forces_committee"]
        err2 += float(np.sum((forces - ref) ** 2))
        var += float(np.sum(np.var(members, axis=0, ddof=1)))
    return float(np.sqrt(err2 / var)) if var > 0 else float("nan")


def rescale_committee(mean: np.ndarray, committee: np.ndarray, scale: float) -> np.ndarray:
    """Members moved ``scale`` times as far from ``mean`` (coefficients, ``(K, M)``)."""
    mean = np.asarray(mean, dtype=float)
    return mean + float(scale) * (np.asarray(committee, dtype=float) - mean)
