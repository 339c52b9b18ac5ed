"""Weighted linear and Bayesian fits of ACE models to energies, forces and virials.

Modules: :mod:`~aceal.fit.data` (reading labelled configurations),
:mod:`~aceal.fit.weights`, :mod:`~aceal.fit.e0` (reference energies),
:mod:`~aceal.fit.assembly` and :mod:`~aceal.fit.normal_equations` (additive normal
equations), :mod:`~aceal.fit.solvers` (ridge with smoothness prior, evidence maximisation,
posterior committees), :mod:`~aceal.fit.metrics`, :mod:`~aceal.fit.config` (schema),
:mod:`~aceal.fit.report` and :mod:`~aceal.fit.fitter` (orchestration).
See ``docs/fitting.md``.
"""

from aceal.fit.assembly import assemble, observations
from aceal.fit.config import load_config, validate_config
from aceal.fit.data import Keys, Labels, get_labels
from aceal.fit.e0 import fit_e0, reference_energy
from aceal.fit.fitter import FitResult, assemble_data, load_dataset, run_fit, solve
from aceal.fit.metrics import Prediction, error_metrics, predict
from aceal.fit.normal_equations import NormalEquations
from aceal.fit.solvers import Posterior, fit_bayesian, fit_ridge, smoothness_prior
from aceal.fit.weights import Weights

__all__ = [
    "FitResult", "Keys", "Labels", "NormalEquations", "Posterior", "Prediction", "Weights",
    "assemble", "assemble_data", "error_metrics", "fit_bayesian", "fit_e0", "fit_ridge",
    "get_labels", "load_config", "load_dataset", "observations", "predict",
    "reference_energy", "run_fit", "smoothness_prior", "solve",
    "validate_config",
]
