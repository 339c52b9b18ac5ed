"""Orchestration of a fit: data -> basis -> E0 -> normal equations -> solve -> model + report.

Each phase is a function so the active-learning loop can reuse them (e.g. fold new
configurations into saved normal equations with :func:`assemble_data` and re-solve with
:func:`solve`); :func:`run_fit` chains them for ``aceal fit``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from aceal.errors import AcealInputError
from aceal.fit.assembly import Baseline, assemble
from aceal.fit.config import (
    E0Settings,
    FitConfig,
    PriorSettings,
    RepulsionSettings,
    SolverSettings,
)
from aceal.fit.data import Keys, Labels, get_labels, nearest_neighbour_distance
from aceal.fit.e0 import check_e0, fit_e0, isolated_atom_e0
from aceal.fit.metrics import error_metrics, predict
from aceal.fit.normal_equations import NormalEquations
from aceal.fit.report import parity_plot, report_paths, write_report
from aceal.fit.solvers import Posterior, fit_bayesian, fit_ridge, profile_out, smoothness_prior
from aceal.fit.weights import Weights
from aceal.settings import dump
from aceal.store import read_configurations

__all__ = [
    "Dataset",
    "FitResult",
    "load_dataset",
    "build_basis",
    "reference_energies",
    "make_repulsion",
    "assemble_data",
    "solve",
    "run_fit",
]


@dataclass
class Dataset:
    """Configurations with their labels; ``sources`` are the files they came from."""

    structures: list[Atoms]
    labels: list[Labels]
    sources: list[str] = field(default_factory=list)

    @property
    def natoms(self) -> list[int]:
        return [len(a) for a in self.structures]

    @property
    def elements(self) -> list[str]:
        """Chemical symbols present, sorted by atomic number."""
        symbols = {s for a in self.structures for s in a.get_chemical_symbols()}
        return sorted(symbols, key=lambda s: atomic_numbers[s])

    def summary(self) -> dict:
        types: dict[str, int] = {}
        for lab in self.labels:
            types[lab.config_type] = types.get(lab.config_type, 0) + 1
        return {"files": self.sources, "n_configs": len(self.structures),
                "n_atoms": int(sum(self.natoms)), "config_types": types,
                "n_energy": sum(lab.energy is not None for lab in self.labels),
                "n_forces": sum(lab.forces is not None for lab in self.labels),
                "n_stress": sum(lab.stress is not None for lab in self.labels)}


@dataclass
class FitResult:
    """What :func:`run_fit` produced."""

    model: Any
    posterior: Posterior
    normal_equations: NormalEquations
    report: dict
    model_path: Path
    report_path: Path
    plot_path: Path | None


class _Timer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0


# ---------------------------------------------------------------------- phases
def load_dataset(paths: Sequence[str | Path], keys: Keys | None = None) -> Dataset:
    """Read configurations from XYZ files / zarr stores and extract their labels."""
    keys = keys or Keys()
    structures: list[Atoms] = []
    labels: list[Labels] = []
    for path in paths:
        frames = read_configurations(path)
        for i, atoms in enumerate(frames):
            labels.append(get_labels(atoms, keys, where=f"{path}: configuration {i}"))
        structures.extend(frames)
    if not any(lab.energy is not None or lab.forces is not None or lab.stress is not None
               for lab in labels):
        raise AcealInputError(f"{', '.join(map(str, paths))}: no energies, forces or stresses "
                              f"found (keys {keys.energy!r}, {keys.forces!r}, {keys.stress!r})")
    return Dataset(structures, labels, [str(p) for p in paths])


def build_basis(basis_cfg: Mapping[str, Any], elements: Sequence[str], structures: Sequence[Atoms]):
    """Construct the :class:`aceal.basis.ACEBasis` of a config section.

    ``r_cut: {nn_multiple: x}`` becomes ``x`` times the median nearest-neighbour distance
    of ``structures`` (rounded to 0.01 Å).

    Returns
    -------
    (basis, kwargs)
        The basis and the keyword arguments it was built with (for the report).
    """
    from aceal.basis import ACEBasis

    kwargs = dict(basis_cfg)
    rc = kwargs.get("r_cut")
    if isinstance(rc, dict):
        d_nn = nearest_neighbour_distance(structures)
        kwargs["r_cut"] = round(rc["nn_multiple"] * d_nn, 2)
    try:
        basis = ACEBasis(elements=list(elements), **kwargs)
    except TypeError as err:
        raise AcealInputError(f"basis: {err}") from err
    return basis, kwargs


def reference_energies(e0_cfg: E0Settings, data: Dataset, elements: Sequence[str],
                       baseline: Baseline | None = None) -> dict[str, float]:
    """Per-element reference energies (eV/atom) following the ``e0`` config section.

    For ``method: fit`` (fitted jointly with the coefficients, see :func:`solve`) this
    returns zeros; they are placeholders until the solve.
    """
    method = e0_cfg.method
    if method == "fit":
        return {el: 0.0 for el in elements}
    if method == "given":
        return check_e0(e0_cfg.values, elements)
    idx = [i for i, lab in enumerate(data.labels) if lab.energy is not None]
    energies = [data.labels[i].energy for i in idx]
    if baseline is not None:
        energies = [e - baseline(data.structures[i])[0] for e, i in zip(energies, idx, strict=True)]
    if method == "isolated":
        return isolated_atom_e0([data.structures[i] for i in idx], energies, elements)
    if method != "composition":
        raise AcealInputError(f"e0.method: unknown method {method!r}")
    return fit_e0([data.structures[i].numbers for i in idx], energies, elements)


def make_repulsion(rep_cfg: RepulsionSettings | None, basis) -> tuple[dict | None, Baseline | None]:
    """The core repulsion of the ``repulsion`` section and its fitting baseline.

    The repulsion (``prehc * exp(-lambdahc r^2) / r``, eV and Å, PACE form) is part of the
    model but not fitted: its energy, forces and stress (from a model with zero
    coefficients) are subtracted from the targets.  PACE switches it off above the basis'
    inner cutoff ``r_in``, so it needs ``basis.r_in > 0``.
    """
    if rep_cfg is None:
        return None, None
    if not float(getattr(basis, "r_in", 0.0)) > 0.0:
        raise AcealInputError("repulsion: needs an inner cutoff, set basis.r_in > 0 (Å)")
    from aceal.calculator import ACECalculator
    from aceal.model import ACEModel

    rep = {"prehc": float(rep_cfg.prehc), "lambdahc": float(rep_cfg.lambdahc)}
    calc = ACECalculator(ACEModel(basis, np.zeros(len(basis)), e0=None, repulsion=rep))

    def baseline(atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
        a = atoms.copy()
        a.calc = calc
        stress = a.get_stress(voigt=True) if bool(np.all(a.pbc)) else None
        return float(a.get_potential_energy()), np.array(a.get_forces()), stress

    return rep, baseline


def assemble_data(data: Dataset, basis, weights: Weights, e0: dict[str, float],
                  baseline: Baseline | None = None, chunk_size: int = 32,
                  progress: bool | None = None, neq: NormalEquations | None = None,
                  rows_fn: Callable[[list[Atoms]], list] | None = None,
                  e0_columns: Sequence[str] = ()) -> NormalEquations:
    """Normal equations of ``data`` (folded into ``neq`` if given).

    ``rows_fn`` defaults to :func:`aceal.descriptors.design_rows` with ``basis``;
    ``e0_columns`` are elements whose ``E0`` is fitted jointly (extra last columns).
    """
    if rows_fn is None:
        from aceal.descriptors import DesignTables, design_rows

        tables = DesignTables(basis)  # built once, reused for every chunk

        def rows_fn(structures: list[Atoms]) -> list:
            return design_rows(tables, structures)

    return assemble(data.structures, data.labels, weights, e0, rows_fn, len(basis),
                    baseline=baseline, chunk_size=chunk_size, progress=progress, neq=neq,
                    e0_columns=e0_columns)


def solve(neq: NormalEquations, degrees: np.ndarray, solver_cfg: SolverSettings,
          prior_cfg: PriorSettings,
          n_e0: int = 0, orders: np.ndarray | None = None
          ) -> tuple[Posterior, Callable[[np.ndarray], np.ndarray]]:
    """Solve the normal equations with the smoothness prior (see :mod:`aceal.fit.solvers`).

    The last ``n_e0`` columns (jointly fitted reference energies) get a flat prior: they are
    profiled out exactly (:func:`~aceal.fit.solvers.profile_out`) before the solve.

    Returns
    -------
    (posterior, e0_of)
        The posterior over the basis coefficients and ``e0_of(c)``, the fitted reference
        energies (eV/atom, element order of the columns) for coefficients ``c``.
    """
    ata, aty, yty, n = neq.total()
    if n == 0:
        raise AcealInputError("no observations with non-zero weight to fit")
    ata, aty, yty, n, e0_of = profile_out(ata, aty, yty, n, n_e0)
    if n < 1:
        raise AcealInputError("not enough observations to fit")
    prior = smoothness_prior(degrees, prior_cfg.power, prior_cfg.offset, orders,
                             prior_cfg.order_factor)
    if solver_cfg.method == "ridge":
        post = fit_ridge(ata, aty, yty, n, prior, solver_cfg.lambda_)
    else:
        post = fit_bayesian(ata, aty, yty, n, prior, max_iter=solver_cfg.max_iter)
    return post, e0_of


def _hyper(post: Posterior, neq: NormalEquations, cfg: FitConfig, e0_fitted: np.ndarray) -> dict:
    res = neq.residual_norms(np.concatenate([post.mean, e0_fitted]))
    return {
        "method": cfg.fit.solver.method,
        "alpha": post.alpha, "beta": post.beta, "lambda": post.lam,
        "noise_scale": 1.0 / np.sqrt(post.beta),
        "log_evidence": post.log_evidence, "effective_parameters": post.gamma,
        "iterations": post.iterations, "converged": post.converged,
        "prior": dump(cfg.fit.prior),
        "weights": dump(cfg.fit.weights),
        "rows": neq.n_rows,
        "weighted_residual": res,
        # of the column-scaled, regularised normal matrix that is actually solved
        "condition_number": float((post.eigvals.max() + post.lam)
                                  / (post.eigvals.min() + post.lam)),
    }


# ---------------------------------------------------------------------- auto search
@dataclass
class _Prepared:
    """A basis and the normal equations of the training data, ready for :func:`solve`."""

    basis: Any
    basis_kwargs: dict
    repulsion: dict | None
    e0: dict[str, float]
    e0_columns: list[str]
    neq: NormalEquations
    cfg: FitConfig            # with the searched settings filled in
    search: dict | None = None


def _subset(data: Dataset, mask: np.ndarray) -> Dataset:
    idx = np.flatnonzero(mask)
    return Dataset([data.structures[i] for i in idx], [data.labels[i] for i in idx],
                   data.sources)


def _auto(cfg: FitConfig, data: Dataset, elements: list[str], progress: bool | None,
          say: Callable[[str], None]) -> _Prepared:
    """``hyperparameters: auto``: the search of :mod:`aceal.fit.search` on ``data`` (the
    training set; nothing else is passed in)."""
    from tqdm import tqdm

    from aceal.descriptors import DesignTables, design_rows
    from aceal.fit.normal_equations import KINDS
    from aceal.fit.search import Candidate, FoldEquations, fold_indices, search_hyperparameters

    s = cfg.search
    w = cfg.fit.weights
    # unit weights per kind; a config type's override kept relative to the global weight
    rel = {ct: {k: v / getattr(w, k) for k, v in o.model_dump(exclude_none=True).items()
                if getattr(w, k) > 0} for ct, o in w.config_types.items()}
    unit = Weights(1.0, 1.0, 1.0, rel)
    folds = fold_indices([lab.config_type for lab in data.labels], s.folds, s.seed)
    e0_columns = list(elements) if cfg.e0.method == "fit" else []
    contexts: dict[float, tuple] = {}
    d_nn = nearest_neighbour_distance(data.structures)

    def assemble_cutoff(multiple: float) -> FoldEquations:
        basis_cfg = dict(cfg.basis, r_cut=round(multiple * d_nn, 2))
        basis, kwargs = build_basis(basis_cfg, elements, data.structures)
        repulsion, baseline = make_repulsion(cfg.repulsion, basis)
        e0 = reference_energies(cfg.e0, data, elements, baseline)
        tables = DesignTables(basis)

        def rows_fn(structures: list[Atoms]) -> list:
            return design_rows(tables, structures)

        per_fold = [assemble_data(_subset(data, folds == j), basis, unit, e0, baseline,
                                  chunk_size=cfg.fit.chunk_size, progress=False,
                                  rows_fn=rows_fn, e0_columns=e0_columns)
                    for j in range(s.folds)]
        contexts[multiple] = (basis, kwargs, repulsion, e0)
        say(f"search: assembled {len(basis)} functions at r_cut {kwargs['r_cut']} Å "
            f"({multiple:g} x the nearest-neighbour distance)")
        return FoldEquations(multiple, per_fold, np.asarray(basis.degrees),
                             np.asarray(basis.orders), len(e0_columns))

    rc = cfg.basis.get("r_cut")
    start_cut = (rc["nn_multiple"] if isinstance(rc, dict)
                 else round(rc / d_nn, 3) if rc is not None else s.cutoffs[len(s.cutoffs) // 2])
    first = assemble_cutoff(start_cut)
    start = Candidate(start_cut, tuple(float(d) for d in contexts[start_cut][0].max_degrees),
                      tuple(sorted({"energy": w.energy, "forces": w.forces,
                                    "virial": w.virial}.items())),
                      float(cfg.fit.prior.order_factor))
    kinds = [k for k in KINDS if any(f.n_rows[k] > 0 for f in first.folds)]
    bar = tqdm(desc="search", unit="candidate", disable=not (progress if progress is not None
                                                              else sys.stderr.isatty()),
               file=sys.stderr)

    def on_trial(t) -> None:
        bar.update(1)
        bar.set_postfix(score=f"{t.score:.3f}", functions=t.n_functions)

    try:
        res = search_hyperparameters(
            lambda c: first if c == start_cut else assemble_cutoff(c), start, s.cutoffs,
            dict(s.score), kinds, time_budget=s.time_budget, max_iter=cfg.fit.solver.max_iter,
            power=cfg.fit.prior.power, offset=cfg.fit.prior.offset, progress=on_trial)
    finally:
        bar.close()
    best = res.best.candidate
    big, kwargs, repulsion, e0 = contexts[best.cutoff]
    kwargs = dict(kwargs, max_degree=list(best.max_degree))
    from aceal.basis import ACEBasis

    basis = ACEBasis(elements=list(elements), **kwargs)
    labels = big.labels()
    if basis.labels() != [labels[i] for i in res.columns[:len(basis)]]:
        raise RuntimeError("the searched basis is not a sub-basis of the assembled one")
    chosen = cfg.model_copy(deep=True)
    chosen.basis = dict(cfg.basis, max_degree=list(best.max_degree),
                        r_cut={"nn_multiple": best.cutoff})
    for kind, value in best.weight_map.items():
        setattr(chosen.fit.weights, kind, value)
    chosen.fit.prior.order_factor = best.order_factor
    say(f"search: {len(res.trials)} candidates in {res.seconds['total']:.0f} s; chose "
        f"r_cut {kwargs['r_cut']} Å, max_degree {list(best.max_degree)} "
        f"({len(basis)} functions), weights {best.weight_map}, order_factor "
        f"{best.order_factor:g}; CV RMSE {res.best.cv_rmse}")
    return _Prepared(basis, kwargs, repulsion, e0, e0_columns, res.normal_equations, chosen,
                     res.report())


def _fixed(cfg: FitConfig, data: Dataset, elements: list[str], progress: bool | None,
           timer: _Timer, say: Callable[[str], None]) -> _Prepared:
    """The settings of the config as they are: one assembly."""
    with timer("basis"):
        basis, basis_kwargs = build_basis(cfg.basis, elements, data.structures)
    say(f"basis: {len(basis)} functions, r_cut {basis_kwargs.get('r_cut', 'default')} Å")
    with timer("e0"):
        repulsion, baseline = make_repulsion(cfg.repulsion, basis)
        e0 = reference_energies(cfg.e0, data, elements, baseline)
    weights = Weights.from_settings(cfg.fit.weights)
    with timer("assembly"):
        e0_columns = list(elements) if cfg.e0.method == "fit" else []
        neq = assemble_data(data, basis, weights, e0, baseline,
                            chunk_size=cfg.fit.chunk_size, progress=progress,
                            e0_columns=e0_columns)
    say(f"assembled {sum(neq.n_rows.values())} rows in {timer.times['assembly']:.1f} s")
    return _Prepared(basis, basis_kwargs, repulsion, e0, e0_columns, neq, cfg)


# ---------------------------------------------------------------------- driver
def run_fit(cfg: FitConfig, *, train: Sequence[str] | None = None,
            test: Sequence[str] | None = None, out: str | Path | None = None,
            progress: bool | None = None, log: Callable[[str], None] | None = None) -> FitResult:
    """Run a whole fit from a validated config (:func:`aceal.fit.config.load_config`).

    Parameters
    ----------
    cfg
        Validated configuration.
    train, test, out
        Override ``data.train``, ``data.test`` and ``output.model``.
    progress
        Progress bars (``None``: only on a terminal).
    log
        Called with one-line progress messages (e.g. ``print``).
    """
    say = log or (lambda msg: None)
    timer = _Timer()
    t_start = time.perf_counter()
    train = list(train) if train else cfg.data.train
    test = list(test) if test else cfg.data.test
    if not train:
        raise AcealInputError("data.train: no training data (give it in the config or --train)")
    model_path = Path(out if out is not None else cfg.output.model)
    keys = Keys(**cfg.data.keys.model_dump())

    with timer("read"):
        train_data = load_dataset(train, keys)
    elements = train_data.elements
    say(f"read {len(train_data.structures)} training configurations "
        f"({sum(train_data.natoms)} atoms, elements {' '.join(elements)})")

    if cfg.hyperparameters == "auto":
        with timer("search"):
            prep = _auto(cfg, train_data, elements, progress, say)
    else:
        prep = _fixed(cfg, train_data, elements, progress, timer, say)
    cfg, basis, basis_kwargs, neq = prep.cfg, prep.basis, prep.basis_kwargs, prep.neq
    repulsion, e0, e0_columns = prep.repulsion, prep.e0, prep.e0_columns
    if cfg.output.normal_equations:
        neq.save(cfg.output.normal_equations)

    with timer("solve"):
        post, e0_of = solve(neq, basis.degrees, cfg.fit.solver, cfg.fit.prior,
                            n_e0=len(e0_columns), orders=basis.orders)
        if e0_columns:
            e0 = {el: float(v) for el, v in zip(e0_columns, e0_of(post.mean), strict=True)}
    committee = None
    with timer("committee"):
        if cfg.fit.committee.size > 0:
            committee = post.sample(cfg.fit.committee.size,
                                    cfg.fit.committee.seed)
    say(f"solved in {timer.times['solve']:.1f} s (lambda {post.lam:.3g}, "
        f"effective parameters {post.gamma:.1f})")

    from aceal.model import ACEModel

    with timer("write_model"):
        model = ACEModel(basis, post.mean, e0=e0, repulsion=repulsion, committee=committee)
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)

    with timer("read"):  # only now: nothing above may depend on the test data
        test_data = load_dataset(test, keys) if test else None
    if test_data is not None:
        extra = sorted(set(test_data.elements) - set(elements))
        if extra:
            raise AcealInputError(f"test data has elements absent from the training data: "
                                  f"{', '.join(extra)}")
    with timer("evaluate"):
        sets = {"train": train_data}
        if test_data is not None:
            sets["test"] = test_data
        errors, plot_sets = {}, {}
        for name, d in sets.items():
            preds = predict(model, d.structures)
            errors[name] = error_metrics(d.labels, preds, d.natoms)
            plot_sets[name] = (d.labels, preds, d.natoms)
    report_path, plot_path = report_paths(model_path)
    if cfg.output.report:
        report_path = Path(cfg.output.report)
    with timer("plot"):
        if cfg.output.plot:
            parity_plot(plot_path, plot_sets)
        else:
            plot_path = None
    timer.times["total"] = time.perf_counter() - t_start

    report = {
        "model": str(model_path),
        "parity_plot": str(plot_path) if plot_path else None,
        "data": {name: d.summary() for name, d in sets.items()},
        "basis": {"size": len(basis), "elements": elements,
                  "per_order": {int(o): int(n) for o, n in
                                zip(*np.unique(basis.orders, return_counts=True), strict=True)},
                  **{k: v for k, v in basis_kwargs.items()}},
        "e0": e0,
        "e0_method": cfg.e0.method,
        "hyperparameters": _hyper(post, neq, cfg, e0_of(post.mean)),
        "hyperparameter_search": prep.search,
        "committee_size": 0 if committee is None else len(committee),
        "errors": errors,
        "timings": timer.times,
        "threads": {"numba": _numba_threads(), "cpus": os.cpu_count()},
        "config": dump(cfg),
    }
    write_report(report_path, report)
    return FitResult(model, post, neq, report, model_path, report_path, plot_path)


def _numba_threads() -> int | None:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # pragma: no cover - numba is a dependency
        return None
