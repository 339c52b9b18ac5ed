"""The ``aceal fit`` configuration as typed settings (:mod:`aceal.settings`).

:class:`FitConfig` is the whole file; its sections (:class:`BasisSettings` as a plain
keyword mapping for :class:`aceal.basis.ACEBasis`, :class:`E0Settings`,
:class:`RepulsionSettings`, :class:`WeightsSettings`, :class:`SolverSettings`,
:class:`PriorSettings`) are shared with the campaign config (:mod:`aceal.loop.config`).
Units: weights per squared unit of the observation (``energy`` 1/(eV/atom)², ``forces``
1/(eV/Å)², ``virial`` 1/(eV/atom)²), cutoffs in Å, E0 in eV/atom.  The tables of
``docs/fitting.md`` are checked against these models by a test.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from aceal.settings import Settings, load_yaml, parse

__all__ = ["FitConfig", "load_config", "validate_config", "basis_parameter_names",
           "BasisKwargs", "E0Settings", "RepulsionSettings", "WeightsSettings",
           "SolverSettings", "PriorSettings", "SearchSettings", "PathList"]


def basis_parameter_names() -> set[str]:
    """Keyword arguments of :class:`aceal.basis.ACEBasis`."""
    from aceal.basis import ACEBasis

    return {n for n in inspect.signature(ACEBasis).parameters if n != "self"}


def _path_list(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"expected a path or a list of paths, got {value!r}")


#: a path or a non-empty list of paths (a single path becomes a list)
PathList = Annotated[list[str] | None, BeforeValidator(_path_list)]


def _check_basis(value: Any) -> dict[str, Any]:
    """Keyword mapping for ACEBasis: known keys only; ``r_cut`` Å or ``{nn_multiple: x}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {value!r}")
    allowed = basis_parameter_names()
    out = {}
    for key, v in value.items():
        if key == "elements":
            raise ValueError(f"@{key}: set automatically, remove it")
        if key not in allowed:
            raise ValueError(f"@{key}: unknown key")
        if key == "r_cut":
            v = _cutoff(v)
            if v is None:
                continue
        out[key] = v
    return out


def _cutoff(v: Any) -> Any:
    if v is None:
        return None
    ok_number = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
    ok_multiple = (isinstance(v, dict) and set(v) == {"nn_multiple"}
                   and isinstance(v["nn_multiple"], int | float)
                   and not isinstance(v["nn_multiple"], bool) and v["nn_multiple"] > 0)
    if ok_number:
        return float(v)
    if ok_multiple:
        return {"nn_multiple": float(v["nn_multiple"])}
    raise ValueError(f"@r_cut: expected a cutoff in Å or {{nn_multiple: x}}, got {v!r}")


#: keyword arguments of :class:`aceal.basis.ACEBasis` (``order``, ``max_degree``, ``r_cut``
#: in Å or ``{nn_multiple: x}`` times the median nearest-neighbour distance, ...)
BasisKwargs = Annotated[dict[str, Any], BeforeValidator(_check_basis)]


class DataKeys(Settings):
    """Names of the label keys in the data files."""

    energy: str = Field("energy", description="total energy key, eV")
    forces: str = Field("forces", description="forces key, eV/Å")
    stress: str = Field("stress", description="stress key, eV/Å³ (ASE sign, Voigt)")
    config_type: str = Field("config_type", description="configuration type key")
    weight: str = Field("weight", description="per-configuration weight factor key")


class DataSettings(Settings):
    train: PathList = Field(None, description="training data: extended XYZ files or stores")
    test: PathList = Field(None, description="test data, evaluated after the fit")
    keys: DataKeys = Field(default_factory=DataKeys)


class E0Settings(Settings):
    method: Literal["fit", "composition", "given", "isolated"] = Field(
        "fit", description="reference energies: fitted jointly, by composition, given, "
                           "or of isolated atoms")
    values: dict[str, float] = Field(default_factory=dict,
                                     description="E0 per element, eV/atom (method given)")

    @model_validator(mode="after")
    def _given_needs_values(self) -> E0Settings:
        if self.method == "given" and not self.values:
            raise ValueError("@values: required when e0.method is given")
        return self


class RepulsionSettings(Settings):
    """Core repulsion ``prehc * exp(-lambdahc r**2) / r`` (PACE form) below ``basis.r_in``."""

    prehc: float = Field(ge=0, description="prefactor, eV Å")
    lambdahc: float = Field(ge=0, description="decay, 1/Å²")


class ConfigTypeWeights(Settings):
    energy: float | None = Field(None, ge=0)
    forces: float | None = Field(None, ge=0)
    virial: float | None = Field(None, ge=0)


class WeightsSettings(Settings):
    energy: float = Field(1.0e4, ge=0, description="per (eV/atom)² of the energy per atom")
    forces: float = Field(1.0e2, ge=0, description="per (eV/Å)² of each force component")
    virial: float = Field(1.0e3, ge=0, description="per (eV/atom)² of each virial component")
    config_types: dict[str, ConfigTypeWeights] = Field(
        default_factory=dict, description="per config_type overrides of the three weights")


class SolverSettings(Settings):
    method: Literal["bayesian", "ridge"] = Field(
        "bayesian", description="evidence maximisation, or ridge with a fixed lambda")
    lambda_: float = Field(1e-8, ge=0, alias="lambda",
                           description="ridge strength relative to the prior")
    max_iter: int = Field(1000, gt=0, description="evidence-maximisation iterations")


class PriorSettings(Settings):
    """Smoothness prior precision ``(offset + degree)**power * order_factor**(order - 1)``."""

    power: float = Field(2.0, ge=0, description="power of the degree")
    offset: float = Field(1.0, gt=0, description="added to the degree")
    order_factor: float = Field(1.0, gt=0, description="extra penalty per body order")


class CommitteeSettings(Settings):
    size: int = Field(0, ge=0, description="posterior samples saved with the model")
    seed: int = Field(0, description="their random seed")


class FitSection(Settings):
    weights: WeightsSettings = Field(default_factory=WeightsSettings)
    solver: SolverSettings = Field(default_factory=SolverSettings)
    prior: PriorSettings = Field(default_factory=PriorSettings)
    committee: CommitteeSettings = Field(default_factory=CommitteeSettings)
    chunk_size: int = Field(32, gt=0, description="configurations per assembly chunk")


class SearchSettings(Settings):
    """The search of ``hyperparameters: auto`` (:mod:`aceal.fit.search`)."""

    folds: int = Field(5, ge=2, description="cross-validation folds of the training set")
    seed: int = Field(0, description="seed of the fold assignment")
    cutoffs: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [2.0, 2.3, 2.6], min_length=1,
        description="cutoff candidates, multiples of the median nearest-neighbour distance "
                    "(extended past an edge that wins)")
    score: dict[Literal["energy", "forces", "virial"], Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"energy": 1.0, "forces": 1.0, "virial": 1.0},
        description="weight of each kind's log CV RMSE in the score")
    time_budget: float = Field(480.0, gt=0,
                               description="s; no new line search starts after this")


class OutputSettings(Settings):
    model: str = Field("model.yaml", description="model file (.yaml or .yace)")
    report: str | None = Field(None, description="JSON report (default: next to the model)")
    plot: bool = Field(True, description="write the parity plot")
    normal_equations: str | None = Field(None, description="save the normal equations (.npz)")


class FitConfig(Settings):
    """An ``aceal fit`` config file."""

    data: DataSettings = Field(default_factory=DataSettings)
    basis: BasisKwargs = Field(default_factory=dict)
    e0: E0Settings = Field(default_factory=E0Settings)
    repulsion: RepulsionSettings | None = None
    fit: FitSection = Field(default_factory=FitSection)
    hyperparameters: Literal["fixed", "auto"] = Field(
        "fixed", description="auto: cutoff, basis size per order, weight ratios and "
                             "order_factor chosen by cross-validation on the training data")
    search: SearchSettings = Field(default_factory=SearchSettings)
    output: OutputSettings = Field(default_factory=OutputSettings)

    @model_validator(mode="after")
    def _auto_needs_evidence(self) -> FitConfig:
        if self.hyperparameters == "auto" and self.fit.solver.method != "bayesian":
            raise ValueError("@hyperparameters: auto sets the prior strength by Bayesian "
                             "evidence; use fit.solver.method: bayesian")
        return self

    @field_validator("repulsion", mode="before")
    @classmethod
    def _mapping(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, dict):
            raise ValueError(f"expected a mapping or null, got {v!r}")
        return v


def validate_config(doc: Any) -> FitConfig:
    """Validate a parsed configuration; defaults filled in."""
    return parse(FitConfig, doc)


def load_config(path: str | Path) -> FitConfig:
    """Read and validate a YAML configuration file."""
    return validate_config(load_yaml(path))
