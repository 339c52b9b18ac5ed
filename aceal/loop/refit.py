"""Incremental refits: fold new configurations into saved normal equations and re-solve.

The campaign keeps, next to its store, ``normal_equations.npz`` (the additive normal
equations of :class:`aceal.fit.NormalEquations`, exactly those of the first
``n_configs`` store entries) and ``active_set.npz`` (the per-element active-set rows of
the extrapolation grade and the mean descriptor of every training configuration).  A
refit only assembles the configurations appended since (the store's tail), re-solves
with :func:`aceal.fit.fit_ridge` / :func:`aceal.fit.fit_bayesian` (ridge, or Bayesian
evidence maximisation, with the smoothness prior) and draws a committee from the
posterior.  Both files are replaced atomically; after a crash the tail beyond what they
hold is simply folded in again, so nothing is counted twice.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from aceal.fit import (
    NormalEquations,
    Weights,
    assemble,
    fit_bayesian,
    fit_ridge,
    get_labels,
    smoothness_prior,
)
from aceal.fit.solvers import Posterior
from aceal.loop.walker import ModelBundle
from aceal.store.atomic import write_atomic

__all__ = ["Refitter", "weights_from_config"]

#: Relative singular-value cutoffs of the active set (adapter around
#: :mod:`aceal.uncertainty.active_set`): the row space used to choose the active set is cut
#: at ``ACTIVE_RCOND`` and its inverse at the much smaller ``INVERSE_RCOND``, so that rows
#: chosen as independent are never judged singular by the inverse (with equal defaults a
#: borderline singular value can fall on different sides of the two cuts).
ACTIVE_RCOND = 1e-7
INVERSE_RCOND = 1e-11


def weights_from_config(w: dict) -> Weights:
    """:class:`aceal.fit.Weights` of the ``fit.weights`` section."""
    over = {ct: {k: v for k, v in d.items() if v is not None}
            for ct, d in w["config_types"].items()}
    return Weights(w["energy"], w["forces"], w["virial"], over)


class Refitter:
    """Normal equations + active set of a campaign, updated incrementally.

    Parameters
    ----------
    basis
        The campaign's :class:`aceal.basis.ACEBasis` (fixed for the whole campaign).
    tables
        Its :class:`aceal.descriptors.DesignTables`.
    fit_cfg
        The validated ``fit`` section.
    e0
        Reference energies, eV/atom (fixed for the whole campaign).
    directory
        Where ``normal_equations.npz`` and ``active_set.npz`` live.
    baseline
        Optional fixed baseline (the core repulsion), see :func:`aceal.fit.assemble`.
    num_threads
        numba threads for the design rows.
    """

    def __init__(self, basis, tables, fit_cfg: dict, e0: dict[str, float],
                 directory: str | Path, baseline=None, num_threads: int | None = None) -> None:
        self.basis = basis
        self.tables = tables
        self.cfg = fit_cfg
        self.e0 = dict(e0)
        self.dir = Path(directory)
        self.baseline = baseline
        self.threads = num_threads
        self.weights = weights_from_config(fit_cfg["weights"])
        self.neq = NormalEquations(len(basis))
        self.active: dict[int, np.ndarray] = {}
        self.config_means = np.zeros((0, len(basis)))
        self.columns = {atomic_numbers[el]: np.flatnonzero(basis.species == mu)
                        for mu, el in enumerate(basis.elements)}
        self.last_posterior: Posterior | None = None

    # ------------------------------------------------------------------ files
    @property
    def neq_path(self) -> Path:
        return self.dir / "normal_equations.npz"

    @property
    def active_path(self) -> Path:
        return self.dir / "active_set.npz"

    @property
    def n_folded(self) -> int:
        """Number of store entries folded in (a prefix of the store)."""
        return int(self.neq.n_configs)

    def load(self) -> bool:
        """Read the saved files; ``False`` (and empty state) if missing or inconsistent."""
        if not (self.neq_path.is_file() and self.active_path.is_file()):
            return False
        try:
            neq = NormalEquations.load(self.neq_path)
            with np.load(self.active_path) as f:
                n = int(f["n_folded"])
                active = {int(k.split("_")[1]): f[k].copy() for k in f.files
                          if k.startswith("active_")}
                means = f["config_means"].copy()
        except Exception:  # a damaged cache is rebuilt from the store
            return False
        if neq.n_basis != len(self.basis) or n != neq.n_configs or len(means) != n:
            return False
        self.neq, self.active, self.config_means = neq, active, means
        return True

    def save(self) -> None:
        """Replace both files atomically (normal equations first)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        arrays: dict[str, np.ndarray] = {"n_folded": np.array(self.n_folded),
                                         "config_means": self.config_means}
        arrays.update({f"active_{z}": a for z, a in self.active.items()})
        tmp = self.dir / ".normal_equations.tmp.npz"
        self.neq.save(tmp)
        os.replace(tmp, self.neq_path)
        np.savez(buf, **arrays)
        write_atomic(self.active_path, buf.getvalue(), durable=True)

    # ------------------------------------------------------------------ update
    def fold(self, structures: Sequence[Atoms]) -> None:
        """Assemble ``structures`` (the next store entries, labelled) into the equations."""
        from aceal.descriptors import design_rows, per_atom_basis
        from aceal.uncertainty.active_set import build_active_set

        if not structures:
            return
        labels = [get_labels(a, where=f"configuration {self.n_folded + i}")
                  for i, a in enumerate(structures)]

        def rows_fn(chunk):
            return design_rows(self.tables, chunk, num_threads=self.threads)

        assemble(list(structures), labels, self.weights, self.e0, rows_fn, len(self.basis),
                 baseline=self.baseline, chunk_size=self.cfg["chunk_size"], progress=False,
                 neq=self.neq)
        per_el: dict[int, list[np.ndarray]] = {z: [a] for z, a in self.active.items()}
        means = []
        for atoms in structures:
            b = per_atom_basis(self.tables, atoms, num_threads=self.threads)
            means.append(b.mean(axis=0))
            for z, cols in self.columns.items():
                mask = atoms.numbers == z
                if mask.any():
                    per_el.setdefault(z, []).append(b[np.ix_(mask, cols)])
        self.config_means = np.vstack([self.config_means, np.array(means)])
        self.active = build_active_set({z: np.vstack(v) for z, v in per_el.items()},
                                       rcond=ACTIVE_RCOND)

    def posterior(self) -> Posterior:
        """The posterior of the folded data (the last :meth:`solve`'s, else solved now)."""
        if self.last_posterior is None:
            self.last_posterior = self._solve()
        return self.last_posterior

    def solve(self, rng: np.random.Generator) -> tuple[Posterior, np.ndarray]:
        """Solve the normal equations; returns the posterior and a ``(K, M)`` committee."""
        post = self._solve()
        committee = post.sample(self.cfg["committee"], rng)
        self.last_posterior = post
        return post, committee

    def _solve(self) -> Posterior:
        ata, aty, yty, n = self.neq.total()
        prior = smoothness_prior(self.basis.degrees, self.cfg["prior"]["power"],
                                 self.cfg["prior"]["offset"])
        if self.cfg["solver"]["method"] == "ridge":
            post = fit_ridge(ata, aty, yty, n, prior, self.cfg["solver"]["lambda"])
        else:
            post = fit_bayesian(ata, aty, yty, n, prior, max_iter=self.cfg["solver"]["max_iter"])
        return post

    def bundle(self, version: int, post: Posterior, committee: np.ndarray,
               repulsion: dict | None) -> ModelBundle:
        """The :class:`ModelBundle` walkers need (mean, committee, E0, active set)."""
        from aceal.uncertainty.active_set import active_set_inverse

        return ModelBundle(version, post.mean.copy(), committee, dict(self.e0), repulsion,
                           active_set_inverse(self.active, rcond=INVERSE_RCOND))

    def training_errors(self, coefficients: np.ndarray) -> dict[str, float | None]:
        """Weighted-residual RMSE per observation kind on the folded training data.

        Energy in eV/atom, forces in eV/Å, virial in eV/atom (exact when no config-type
        weight overrides apply; with overrides it is the RMSE of the weighted residuals
        divided by the global weight).
        """
        res = self.neq.residual_norms(coefficients)
        out: dict[str, float | None] = {}
        for kind, r in res.items():
            n = self.neq.n_rows[kind]
            w = getattr(self.weights, kind)
            out[f"{kind}_rmse"] = float(np.sqrt(r / (n * w))) if n and w > 0 else None
        return out
