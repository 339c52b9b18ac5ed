"""Incremental refits: fold new configurations into saved normal equations and re-solve.

The campaign keeps, next to its store, ``fit_state.npz``: the additive normal equations
of :class:`aceal.fit.NormalEquations` (exactly those of the first ``n_configs`` store
entries), the per-element active-set rows of the extrapolation grade and the mean
descriptor of every training configuration.  A refit only assembles the configurations
appended since (the store's tail), re-solves with the solver of ``aceal fit``
(:func:`aceal.fit.fitter.solve`: ridge or Bayesian evidence maximisation with the
smoothness prior, ``order_factor`` included) and draws a committee from the posterior.
The file is replaced atomically, so it always holds one consistent prefix; after a crash
the tail beyond it is folded in again exactly as the uninterrupted run folded it (the
same chunks in the same order), so nothing is counted twice and the sums agree bit for
bit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from aceal.fit import NormalEquations, Weights, assemble, get_labels
from aceal.fit.fitter import solve
from aceal.fit.solvers import Posterior
from aceal.loop.config import CampaignFit
from aceal.loop.walker import ModelBundle
from aceal.store.atomic import write_atomic

__all__ = ["Refitter", "FIT_STATE"]

#: the refit's saved equations and active set, next to the campaign's store
FIT_STATE = "fit_state.npz"

#: Relative singular-value cutoffs of the active set (adapter around
#: :mod:`aceal.active_set`): the row space used to choose the active set is cut
#: at ``ACTIVE_RCOND`` and its inverse at the much smaller ``INVERSE_RCOND``, so that rows
#: chosen as independent are never judged singular by the inverse (with equal defaults a
#: borderline singular value can fall on different sides of the two cuts).
ACTIVE_RCOND = 1e-7
INVERSE_RCOND = 1e-11


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
        Where ``fit_state.npz`` lives.
    baseline
        Optional fixed baseline (the core repulsion), see :func:`aceal.fit.assemble`.
    num_threads
        numba threads for the design rows.
    """

    def __init__(self, basis, tables, fit_cfg: CampaignFit, e0: dict[str, float],
                 directory: str | Path, baseline=None, num_threads: int | None = None) -> None:
        self.basis = basis
        self.tables = tables
        self.cfg = fit_cfg
        self.e0 = dict(e0)
        self.dir = Path(directory)
        self.baseline = baseline
        self.threads = num_threads
        self.weights = Weights.from_settings(fit_cfg.weights)
        self.neq = NormalEquations(len(basis))
        self.active: dict[int, np.ndarray] = {}
        self.config_means = np.zeros((0, len(basis)))
        self.columns = {atomic_numbers[el]: np.flatnonzero(basis.species == mu)
                        for mu, el in enumerate(basis.elements)}
        self.last_posterior: Posterior | None = None

    # ------------------------------------------------------------------ files
    @property
    def path(self) -> Path:
        return self.dir / FIT_STATE

    @property
    def n_folded(self) -> int:
        """Number of store entries folded in (a prefix of the store)."""
        return int(self.neq.n_configs)

    def load(self) -> bool:
        """Read the saved file; ``False`` (and empty state) if missing or inconsistent."""
        if not self.path.is_file():
            return False
        try:
            with np.load(self.path, allow_pickle=False) as f:
                neq = NormalEquations.from_arrays(f, prefix="neq_")
                active = {int(k.split("_")[1]): f[k].copy() for k in f.files
                          if k.startswith("active_")}
                means = f["config_means"].copy()
        except Exception:  # a damaged cache is rebuilt from the store
            return False
        if neq.n_basis != len(self.basis) or len(means) != neq.n_configs:
            return False
        self.neq, self.active, self.config_means = neq, active, means
        return True

    def save(self) -> None:
        """Replace the file atomically (equations, active set and means together)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        arrays = {**self.neq.to_arrays(prefix="neq_"), "config_means": self.config_means}
        arrays.update({f"active_{z}": a for z, a in self.active.items()})
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_atomic(self.path, buf.getvalue(), durable=True)

    # ------------------------------------------------------------------ update
    def fold(self, structures: Sequence[Atoms]) -> None:
        """Assemble ``structures`` (the next store entries, labelled) into the equations."""
        from aceal.active_set import build_active_set
        from aceal.descriptors import design_rows, per_atom_basis

        if not structures:
            return
        labels = [get_labels(a, where=f"configuration {self.n_folded + i}")
                  for i, a in enumerate(structures)]

        def rows_fn(chunk):
            return design_rows(self.tables, chunk, num_threads=self.threads)

        assemble(list(structures), labels, self.weights, self.e0, rows_fn, len(self.basis),
                 baseline=self.baseline, chunk_size=self.cfg.chunk_size, progress=False,
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

    def catch_up(self, store, chunk: int = 256) -> int:
        """Fold the store entries beyond :attr:`n_folded` and save; returns how many.

        Entries are folded one campaign iteration at a time and in chunks of ``chunk``
        within it, so a campaign that lost this file folds the same chunks in the same
        order as one that never did (the sums agree bit for bit).
        """
        start, n = self.n_folded, len(store)
        if start >= n:
            return 0
        iterations = store.column("iteration")[start:n]
        cuts = [start, *(start + np.flatnonzero(np.diff(iterations)) + 1), n]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            for part in store.iter_chunks(chunk, indices=np.arange(lo, hi)):
                self.fold(part)
        self.save()
        return n - start

    def posterior(self) -> Posterior:
        """The posterior of the folded data (the last :meth:`solve`'s, else solved now)."""
        if self.last_posterior is None:
            self.last_posterior = self._solve()
        return self.last_posterior

    def solve(self, rng: np.random.Generator) -> tuple[Posterior, np.ndarray]:
        """Solve the normal equations; returns the posterior and a ``(K, M)`` committee."""
        post = self._solve()
        committee = post.sample(self.cfg.committee, rng)
        self.last_posterior = post
        return post, committee

    def _solve(self) -> Posterior:
        post, _ = solve(self.neq, self.basis.degrees, self.cfg.solver, self.cfg.prior,
                        orders=self.basis.orders)
        return post

    def bundle(self, version: int, post: Posterior, committee: np.ndarray,
               repulsion: dict | None) -> ModelBundle:
        """The :class:`ModelBundle` walkers need (mean, committee, E0, active set)."""
        from aceal.active_set import active_set_inverse

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
