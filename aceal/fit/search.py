"""Hyperparameters chosen from the training data only (``hyperparameters: auto``).

What is chosen, and how:

* the cutoff (a multiple of the median nearest-neighbour distance), the basis size per
  correlation order (``max_degree`` of each order, at most the configured basis), the
  energy : force : virial weight ratios and the prior's ``order_factor`` by **k-fold
  cross-validation** on the training configurations (folds drawn once, seeded, stratified
  by ``config_type``);
* the prior strength and the noise scale by **Bayesian evidence** on the whole training
  set for every candidate (as a plain ``aceal fit`` does).

Everything runs on normal equations, so one assembly per cutoff serves every other
candidate: each fold is assembled once with unit weights per observation kind (relative
``config_types`` weights kept), a weight candidate is a weighted sum of the blocks, a
smaller basis is a sub-matrix (the basis of a smaller ``max_degree`` is exactly the
functions of the larger one with degree within the limit), and a fold's held-out squared
error is ``y'y - 2 c'b + c'Ac`` of its own blocks. The score of a candidate is
``sum_k s_k log(RMSE_k)`` over the observation kinds (``search.score``: ``s_k``, default 1
for energy, forces and virial): scale-free, so a relative gain on any kind counts the same.

The search is a coordinate descent: the cutoff (the grid, extended past an edge that wins
by the grid's step at that edge, down to ``MIN_CUTOFF_MULTIPLE``), then the weight ratios,
``order_factor`` and the per-order degrees, each a line search on a grid in log space
(refined around the best point), repeated while it improves and time
(``search.time_budget``) is left. The test data of a fit is never passed here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from aceal.fit.normal_equations import KINDS, Block, NormalEquations
from aceal.fit.solvers import fit_bayesian, profile_out, smoothness_prior

#: Smallest cutoff the search extends to, in median nearest-neighbour distances: below
#: about 1.5 the smooth cutoff leaves little more than the first shell.
MIN_CUTOFF_MULTIPLE = 1.5

__all__ = ["MIN_CUTOFF_MULTIPLE", "Candidate", "Trial", "SearchResult", "FoldEquations",
           "fold_indices", "search_hyperparameters"]


@dataclass(frozen=True)
class Candidate:
    """One point of the search space.

    Attributes
    ----------
    cutoff
        Cutoff as a multiple of the median nearest-neighbour distance.
    max_degree
        ``max_degree`` per correlation order (1..order).
    weights
        ``{"energy", "forces", "virial"}`` weights (only their ratios matter: the evidence
        sets the overall noise scale).
    order_factor
        Prior penalty per body order above 1.
    """

    cutoff: float
    max_degree: tuple[float, ...]
    weights: tuple[tuple[str, float], ...]
    order_factor: float

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    def with_weight(self, kind: str, value: float) -> Candidate:
        w = self.weight_map
        w[kind] = float(value)
        return replace(self, weights=tuple(sorted(w.items())))

    def describe(self) -> dict:
        return {"cutoff_nn_multiple": self.cutoff, "max_degree": list(self.max_degree),
                "weights": self.weight_map, "order_factor": self.order_factor}


@dataclass
class Trial:
    """A scored candidate: CV RMSE per kind (eV/atom, eV/Å, eV/atom), evidence, time (s)."""

    candidate: Candidate
    n_functions: int
    cv_rmse: dict[str, float]
    score: float
    log_evidence: float
    lam: float
    seconds: float

    def row(self) -> dict:
        return {**self.candidate.describe(), "n_functions": self.n_functions,
                "cv_rmse": self.cv_rmse, "score": self.score,
                "log_evidence": self.log_evidence, "lambda": self.lam,
                "seconds": round(self.seconds, 3)}


@dataclass
class SearchResult:
    """The chosen candidate, every trial in order, and the chosen normal equations."""

    best: Trial
    trials: list[Trial]
    normal_equations: NormalEquations  # whole training set, chosen weights and columns
    columns: np.ndarray                # chosen basis columns of the assembled basis
    seconds: dict[str, float] = field(default_factory=dict)

    def report(self) -> dict:
        return {"chosen": self.best.row(), "n_trials": len(self.trials),
                "trials": [t.row() for t in self.trials], "timings": self.seconds}


def fold_indices(config_types: Sequence[str | None], folds: int, seed: int) -> np.ndarray:
    """Fold number of each configuration: shuffled, dealt round-robin per ``config_type``."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(config_types), dtype=np.int64)
    types = np.array([str(t) for t in config_types])
    start = 0
    for t in sorted(set(types)):
        idx = np.flatnonzero(types == t)
        rng.shuffle(idx)
        out[idx] = (start + np.arange(idx.size)) % folds
        start += idx.size
    return out


# ---------------------------------------------------------------------- evaluation
@dataclass
class FoldEquations:
    """Unit-weight normal equations of every fold for one cutoff (``degrees``, ``orders``:
    of the assembled basis' functions; the last ``n_e0`` columns are fitted E0)."""

    cutoff: float
    folds: list[NormalEquations]
    degrees: np.ndarray
    orders: np.ndarray
    n_e0: int

    def columns(self, max_degree: Sequence[float]) -> np.ndarray:
        keep = np.zeros(self.degrees.size, dtype=bool)
        for nu, deg in enumerate(max_degree, start=1):
            keep |= (self.orders == nu) & (self.degrees <= deg + 1e-9)
        n = self.degrees.size
        return np.concatenate([np.flatnonzero(keep), np.arange(n, n + self.n_e0)])


def _weighted(neq: NormalEquations, cols: np.ndarray, weights: dict[str, float]):
    """``(A'WA, A'Wy, y'Wy, n)`` of ``neq`` on ``cols`` with per-kind ``weights``."""
    ix = np.ix_(cols, cols)
    ata = np.zeros((cols.size, cols.size))
    aty = np.zeros(cols.size)
    yty, n = 0.0, 0
    for kind, b in neq.blocks.items():
        w = weights.get(kind, 0.0)
        if w <= 0 or b.n_rows == 0:
            continue
        ata += w * b.ata[ix]
        aty += w * b.aty[cols]
        yty += w * b.yty
        n += b.n_rows
    return 0.5 * (ata + ata.T), aty, yty, n


def _ridge_solve(ata, aty, yty, n, n_e0, prior, lam) -> np.ndarray:
    """Coefficients (basis then E0 columns) at fixed ridge ``lam`` (Cholesky)."""
    red_ata, red_aty, _, _, back = profile_out(ata, aty, yty, n, n_e0)
    mat = red_ata + lam * np.diag(prior)
    try:
        c = cho_solve(cho_factor(mat, check_finite=False), red_aty, check_finite=False)
    except np.linalg.LinAlgError:  # pragma: no cover - lam keeps it positive definite
        c = np.linalg.lstsq(mat, red_aty, rcond=None)[0]
    return np.concatenate([c, np.atleast_1d(back(c))])


def _evaluate(asm: FoldEquations, cand: Candidate, score_weights: dict[str, float],
              max_iter: int, power: float, offset: float) -> Trial:
    t0 = time.perf_counter()
    cols = asm.columns(cand.max_degree)
    nb = cols.size - asm.n_e0
    basis_cols = cols[:nb]
    prior = smoothness_prior(asm.degrees[basis_cols], power, offset, asm.orders[basis_cols],
                             cand.order_factor)
    w = cand.weight_map
    parts = [_weighted(f, cols, w) for f in asm.folds]
    ata = sum(p[0] for p in parts)
    aty = sum(p[1] for p in parts)
    yty = sum(p[2] for p in parts)
    n = sum(p[3] for p in parts)
    red = profile_out(ata, aty, yty, n, asm.n_e0)
    post = fit_bayesian(*red[:4], prior, max_iter=max_iter)
    sq = dict.fromkeys(KINDS, 0.0)
    cnt = dict.fromkeys(KINDS, 0)
    for j, fold in enumerate(asm.folds):
        p = parts[j]
        c = _ridge_solve(ata - p[0], aty - p[1], yty - p[2], n - p[3], asm.n_e0, prior,
                         post.lam)
        for kind, b in fold.blocks.items():
            if b.n_rows == 0 or w.get(kind, 0.0) <= 0:
                continue
            held_out = b.yty - 2.0 * c @ b.aty[cols] + c @ b.ata[np.ix_(cols, cols)] @ c
            sq[kind] += max(held_out, 0.0)
            cnt[kind] += b.n_rows
    rmse = {k: math.sqrt(sq[k] / cnt[k]) for k in KINDS if cnt[k]}
    score = sum(score_weights.get(k, 0.0) * math.log(max(v, 1e-300)) for k, v in rmse.items())
    return Trial(cand, nb, rmse, float(score), float(post.log_evidence), float(post.lam),
                 time.perf_counter() - t0)


def _total(asm: FoldEquations, cand: Candidate) -> NormalEquations:
    """Normal equations of the whole training set for ``cand`` (its weights and columns)."""
    cols = asm.columns(cand.max_degree)
    w = cand.weight_map
    total = NormalEquations(cols.size)
    for kind in KINDS:
        wk = w.get(kind, 0.0)
        blocks = [f.blocks[kind] for f in asm.folds]
        total.blocks[kind] = Block(
            wk * sum(b.ata for b in blocks)[np.ix_(cols, cols)],
            wk * sum(b.aty for b in blocks)[cols], wk * sum(b.yty for b in blocks),
            sum(b.n_rows for b in blocks) if wk > 0 else 0)
    total.n_configs = sum(f.n_configs for f in asm.folds)
    total.n_atoms = sum(f.n_atoms for f in asm.folds)
    return total


# ---------------------------------------------------------------------- the search
def search_hyperparameters(
    assemble_cutoff: Callable[[float], FoldEquations],
    start: Candidate,
    cutoffs: Sequence[float],
    score_weights: dict[str, float],
    kinds_present: Sequence[str],
    time_budget: float = 480.0,
    max_iter: int = 1000,
    power: float = 2.0,
    offset: float = 1.0,
    progress: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """Coordinate descent over the candidates (see the module docstring).

    Parameters
    ----------
    assemble_cutoff
        ``cutoff -> FoldEquations``: the unit-weight fold equations of the largest basis
        at that cutoff.
    start
        Starting candidate (its ``max_degree`` is also the largest basis searched).
    cutoffs
        Cutoff candidates (nearest-neighbour multiples).
    score_weights, kinds_present
        ``s_k`` of the score and the observation kinds the data have.
    time_budget
        Seconds after which no new line search is started.
    """
    t_start = time.perf_counter()
    trials: list[Trial] = []
    seen: dict[Candidate, Trial] = {}
    timings = {"assembly": 0.0}
    asm_cache: dict[float, FoldEquations] = {}

    def assembled(cutoff: float) -> FoldEquations:
        if cutoff not in asm_cache:
            t0 = time.perf_counter()
            asm_cache[cutoff] = assemble_cutoff(cutoff)
            timings["assembly"] += time.perf_counter() - t0
        return asm_cache[cutoff]

    def score(cand: Candidate) -> Trial:
        if cand not in seen:
            seen[cand] = _evaluate(assembled(cand.cutoff), cand, score_weights, max_iter,
                                   power, offset)
            trials.append(seen[cand])
            if progress is not None:
                progress(seen[cand])
        return seen[cand]

    best = score(start)

    def over_time() -> bool:
        return time.perf_counter() - t_start > time_budget

    def line(make: Callable[[float], Candidate], values: Sequence[float]) -> None:
        nonlocal best
        for v in values:
            t = score(make(v))
            if t.score < best.score:
                best = t

    def log_line(make: Callable[[float], Candidate], get: Callable[[Candidate], float],
                 factor: float) -> None:
        """Grid ``centre * factor**k`` (k = -2..2), extended past an edge that wins, then
        refined by ``sqrt(factor)`` around the best value."""
        centre = get(best.candidate)
        line(make, [centre * factor**k for k in (-2, -1, 1, 2)])
        for k in (2, 3, 4):
            if over_time():
                return
            if best.candidate == make(centre * factor**k):
                line(make, [centre * factor ** (k + 1)])
            elif best.candidate == make(centre * factor**-k):
                line(make, [centre * factor ** -(k + 1)])
            else:
                break
        b = get(best.candidate)
        line(make, [b / math.sqrt(factor), b * math.sqrt(factor)])

    # 1. cutoff, with everything else at its start value: the grid, then past an edge
    #    that wins by the grid's own step at that edge
    def with_cutoff(c: float) -> Candidate:
        return replace(best.candidate, cutoff=float(c))

    def free_losers() -> None:  # one cutoff's fold equations can take gigabytes
        for c in list(asm_cache):
            if c != best.candidate.cutoff:
                del asm_cache[c]

    grid = sorted({float(c) for c in cutoffs} | {start.cutoff})
    for c in grid:
        if c != start.cutoff:
            line(with_cutoff, [c])
            free_losers()
    while len(grid) > 1 and not over_time():
        above, below = round(grid[-1] ** 2 / grid[-2], 3), round(grid[0] ** 2 / grid[1], 3)
        if best.candidate.cutoff == grid[-1]:
            grid.append(above)
            line(with_cutoff, [above])
        elif best.candidate.cutoff == grid[0] and below >= MIN_CUTOFF_MULTIPLE:
            grid.insert(0, below)
            line(with_cutoff, [below])
        else:
            break
        free_losers()

    def sweep() -> None:
        # 2. weight ratios to the forces weight (the evidence sets the overall scale)
        for kind in ("energy", "virial"):
            if kind in kinds_present and "forces" in kinds_present and not over_time():
                log_line(lambda v, k=kind: best.candidate.with_weight(k, v),
                         lambda c, k=kind: c.weight_map[k], 10.0)
        # 3. body-order penalty
        if not over_time() and len(start.max_degree) > 1:
            log_line(lambda v: replace(best.candidate, order_factor=float(v)),
                     lambda c: c.order_factor, 4.0)
        # 4. degree per order, from the highest order down (shrinking only)
        for nu in range(len(start.max_degree), 0, -1):
            if over_time():
                break
            top = start.max_degree[nu - 1]

            def with_degree(d: float, nu: int = nu) -> Candidate:
                deg = list(best.candidate.max_degree)
                deg[nu - 1] = float(d)
                return replace(best.candidate, max_degree=tuple(deg))

            line(with_degree, [d for d in (top, top - 2, top - 4) if d >= 0])

    for _ in range(3):  # sweeps while they improve
        before = best.score
        sweep()
        if best.score >= before - 1e-9 or over_time():
            break
    timings["total"] = time.perf_counter() - t_start
    asm = assembled(best.candidate.cutoff)
    cols = asm.columns(best.candidate.max_degree)
    return SearchResult(best, trials, _total(asm, best.candidate), cols, timings)
