"""Choosing which candidate configurations to label: thresholds, then a diverse batch.

Two steps, as in pacemaker and DP-GEN:

1. :func:`threshold_select` sorts candidates by an uncertainty signal into "skip"
   (confident), "collect" (uncertain: label it) and "reject" (so far out that the
   configuration is probably unphysical and MD should stop). Lower/upper thresholds:
   pacemaker's extrapolation grade ``gamma`` (dimensionless) ~5 / ~25
   (:data:`PACEMAKER_GAMMA`); DP-GEN's maximum committee force deviation 0.05 / 0.15 eV/Å
   (:data:`DPGEN_FORCE_DEVIATION`).
2. :func:`select_batch` picks ``n`` diverse configurations among the collected ones:

   * ``"fps"``: farthest-point sampling of per-configuration features (mean of the
     per-atom descriptors, standardised per feature), starting away from the training set;
   * ``"d-optimal"``: greedy maximisation of ``log det`` of the information matrix
     ``sum_rows x x^T`` over training plus selected per-atom descriptors, the criterion
     behind pacemaker's active set; each step adds the candidate of largest
     ``log det(I + X_c M^{-1} X_c^T)`` (matrix determinant lemma);
   * ``"entropy"``: greedy maximisation of descriptor entropy (:mod:`.entropy`);
   * ``"information"``: for a linear model with a Gaussian posterior ``N(mean, Sigma)``,
     greedy maximisation of the expected information gain of the labels,
     ``log det(I + X_c Sigma X_c^T)`` with ``X_c`` the candidate's design rows (energy,
     forces, virial) scaled by ``sqrt(beta w)`` (unit noise), updating ``Sigma`` after
     every pick as if it had been labelled (:func:`greedy_information_gain`).  Unlike the
     descriptor-space criteria it knows what the model has already learnt: a candidate
     whose forces the posterior already pins down gains nothing, however far it is in
     descriptor space.  ``X_c Sigma X_c^T`` is the committee's force covariance, so this
     is batch-mode "largest predicted variance" without redundant picks.

   * ``"random"``: uniformly at random (needs ``rng``): the baseline that shows what
     the criteria above buy.

   Candidates listed in ``priority`` (e.g. snapshots with rare events) are taken first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aceal.errors import AcealInputError
from aceal.uncertainty.entropy import select_max_entropy

__all__ = [
    "DPGEN_FORCE_DEVIATION",
    "PACEMAKER_GAMMA",
    "BatchSelection",
    "ThresholdResult",
    "configuration_features",
    "farthest_point_sampling",
    "greedy_d_optimal",
    "greedy_information_gain",
    "select_batch",
    "threshold_select",
]

PACEMAKER_GAMMA: tuple[float, float] = (5.0, 25.0)
"""Lower (collect) and upper (stop) extrapolation-grade thresholds used with pacemaker."""

DPGEN_FORCE_DEVIATION: tuple[float, float] = (0.05, 0.15)
"""DP-GEN trust window for the maximum committee force deviation (eV/Å)."""


@dataclass(frozen=True)
class ThresholdResult:
    """Per-candidate verdicts of :func:`threshold_select`.

    Attributes
    ----------
    status : list of str
        ``"skip"``, ``"collect"`` or ``"reject"`` for each candidate.
    reasons : list of str
        Human-readable reason for each verdict, naming the signal and its value.
    values : dict of str to ndarray
        Per-candidate value of each signal (maximum over atoms for per-atom signals).
    """

    status: list[str]
    reasons: list[str]
    values: dict[str, np.ndarray]

    def _where(self, kind: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.status) if s == kind], dtype=int)

    @property
    def collect(self) -> np.ndarray:
        """Indices of candidates to label."""
        return self._where("collect")

    @property
    def reject(self) -> np.ndarray:
        """Indices of candidates beyond the upper threshold (or with non-finite signals)."""
        return self._where("reject")

    @property
    def skip(self) -> np.ndarray:
        """Indices of candidates below every lower threshold."""
        return self._where("skip")


def _reduce_signal(values: Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values.astype(float)
    out = []
    for v in values:
        a = np.asarray(v, dtype=float)
        out.append(np.nan if a.size == 0 or np.isnan(a).any() else float(a.max()))
    return np.asarray(out, dtype=float)


def threshold_select(
    signals: Mapping[str, Sequence[float] | Sequence[np.ndarray] | np.ndarray],
    thresholds: Mapping[str, tuple[float, float]],
) -> ThresholdResult:
    """Classify candidates by uncertainty signals with lower and upper thresholds.

    Parameters
    ----------
    signals : mapping of str to per-candidate values
        For each signal name, one value per candidate: a scalar, or a per-atom array
        reduced by its maximum (e.g. ``gamma`` per atom, committee force deviation per
        atom in eV/Å).
    thresholds : mapping of str to (lower, upper)
        For each signal to use: values ``>= lower`` are collected, values ``>= upper``
        rejected. Use ``np.inf`` as upper for "never reject".

    Returns
    -------
    ThresholdResult
        A candidate is rejected if any signal reaches its upper threshold or is not
        finite, collected if any reaches its lower threshold, skipped otherwise.
    """
    if not thresholds:
        raise AcealInputError("threshold_select needs at least one threshold")
    values: dict[str, np.ndarray] = {}
    n: int | None = None
    for name, (lower, upper) in thresholds.items():
        if name not in signals:
            raise AcealInputError(f"no signal named {name!r}; have {sorted(signals)}")
        if not lower <= upper:
            raise AcealInputError(f"thresholds of {name!r}: lower {lower} > upper {upper}")
        v = _reduce_signal(signals[name])
        if n is not None and v.size != n:
            raise AcealInputError(f"signal {name!r} has {v.size} candidates, expected {n}")
        n = v.size
        values[name] = v
    status: list[str] = []
    reasons: list[str] = []
    for c in range(n or 0):
        rejected = []
        collected = []
        for name, (lower, upper) in thresholds.items():
            v = values[name][c]
            if not np.isfinite(v):
                rejected.append(f"{name} is not finite")
            elif v >= upper:
                rejected.append(f"{name}={v:.4g} >= {upper:g}")
            elif v >= lower:
                collected.append(f"{name}={v:.4g} in [{lower:g}, {upper:g})")
        if rejected:
            status.append("reject")
            reasons.append("; ".join(rejected))
        elif collected:
            status.append("collect")
            reasons.append("; ".join(collected))
        else:
            status.append("skip")
            reasons.append(
                "; ".join(f"{k}={values[k][c]:.4g} < {lo:g}" for k, (lo, _) in thresholds.items())
            )
    return ThresholdResult(status, reasons, values)


def _as_blocks(candidates: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Candidates as a list of per-atom blocks (n_atoms_i, n_features)."""
    if isinstance(candidates, np.ndarray) and candidates.ndim == 2:
        blocks = [row[None, :] for row in np.asarray(candidates, dtype=float)]
    else:
        blocks = [np.atleast_2d(np.asarray(c, dtype=float)) for c in candidates]
    if not blocks:
        raise AcealInputError("no candidates to select from")
    d = blocks[0].shape[1]
    for b in blocks:
        if b.ndim != 2 or b.shape[1] != d or b.shape[0] == 0:
            raise AcealInputError("candidates must be non-empty (n_atoms, n_features) arrays")
        if not np.isfinite(b).all():
            raise AcealInputError("candidate descriptors contain NaN or inf")
    return blocks


def configuration_features(candidates: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per-configuration feature: mean of the per-atom descriptors, shape (n_candidates, d)."""
    return np.stack([b.mean(axis=0) for b in _as_blocks(candidates)])


def farthest_point_sampling(
    features: np.ndarray,
    n: int,
    existing: np.ndarray | None = None,
    start: int | None = None,
) -> tuple[list[int], list[float]]:
    """Greedy farthest-point sampling (Euclidean) of ``n`` rows of ``features``.

    Parameters
    ----------
    features : ndarray, shape (n_candidates, d)
        Candidate features (already scaled as wanted).
    n : int
        Number to select (at most ``n_candidates``).
    existing : ndarray, shape (n_existing, d), optional
        Points already covered (training set, earlier picks): distances start from them.
    start : int, optional
        First pick when there is no ``existing``; default: the candidate farthest from
        the candidates' mean.

    Returns
    -------
    indices, distances : list of int, list of float
        Picks in order and each pick's distance to the nearest covered point at the time.
    """
    x = np.asarray(features, dtype=float)
    n = min(int(n), x.shape[0])
    mind = np.full(x.shape[0], np.inf)
    if existing is not None and len(existing):
        e = np.atleast_2d(np.asarray(existing, dtype=float))
        for chunk in np.array_split(e, max(1, len(e) // 2048)):
            d2 = ((x[:, None, :] - chunk[None, :, :]) ** 2).sum(axis=2)
            mind = np.minimum(mind, np.sqrt(d2.min(axis=1)))
    indices: list[int] = []
    dists: list[float] = []
    for _ in range(n):
        if np.isinf(mind).all():
            pick = (
                int(np.argmax(np.linalg.norm(x - x.mean(axis=0), axis=1)))
                if start is None
                else int(start)
            )
        else:
            masked = mind.copy()
            masked[indices] = -1.0
            pick = int(np.argmax(masked))
        indices.append(pick)
        dists.append(float(mind[pick]))
        mind = np.minimum(mind, np.linalg.norm(x - x[pick], axis=1))
    return indices, dists


def greedy_d_optimal(
    candidates: Sequence[np.ndarray] | np.ndarray,
    n: int,
    existing: np.ndarray | None = None,
    regularization: float = 1e-6,
    exclude: Sequence[int] = (),
) -> tuple[list[int], list[float]]:
    """Greedy D-optimal batch: maximise ``log det(M)``, ``M = reg I + sum x x^T``.

    Parameters
    ----------
    candidates : sequence of (n_atoms_i, d) arrays, or (n_candidates, d) array
        Per-atom descriptors of each candidate (a 2-D array means one row per candidate).
    n : int
        Number to select.
    existing : ndarray, shape (n_rows, d), optional
        Rows already in the training set.
    regularization : float
        ``reg`` relative to the mean diagonal of the full information matrix (keeps
        ``M`` invertible when the data do not span all features).
    exclude : sequence of int
        Candidates not to pick (e.g. already chosen).

    Returns
    -------
    indices, gains : list of int, list of float
        Picks in order and each one's ``log det`` increase (nats).
    """
    blocks = _as_blocks(candidates)
    d = blocks[0].shape[1]
    info = np.zeros((d, d))
    if existing is not None and len(existing):
        e = np.atleast_2d(np.asarray(existing, dtype=float))
        info += e.T @ e
    total = info + sum(b.T @ b for b in blocks)
    reg = regularization * max(float(np.trace(total)) / d, 1e-300)
    info += reg * np.eye(d)
    available = [i for i in range(len(blocks)) if i not in set(exclude)]
    indices: list[int] = []
    gains: list[float] = []
    while available and len(indices) < n:
        chol = np.linalg.cholesky(info)
        best_gain, best = -np.inf, -1
        for i in available:
            y = np.linalg.solve(chol, blocks[i].T)  # L^{-1} X^T
            g = np.linalg.slogdet(np.eye(blocks[i].shape[0]) + y.T @ y)[1]
            if g > best_gain:
                best_gain, best = float(g), i
        available.remove(best)
        indices.append(best)
        gains.append(best_gain)
        info += blocks[best].T @ blocks[best]
    return indices, gains


def greedy_information_gain(
    rows: Sequence[np.ndarray],
    n: int,
    factor: np.ndarray,
    exclude: Sequence[int] = (),
) -> tuple[list[int], list[float]]:
    """Greedy Bayesian D-optimal batch for a linear-Gaussian model.

    Labelling candidate ``c`` (observations ``y_c = X_c w + e``, unit noise) tells
    ``I_c = 1/2 log det(I + X_c Sigma X_c^T)`` nats about the coefficients ``w ~ N(m,
    Sigma)``.  Picks the candidate of largest gain, conditions ``Sigma`` on its (future)
    labels -- the posterior covariance of a linear model does not depend on the label
    values -- and repeats, so the batch is jointly informative (the objective is
    submodular; greedy is within ``1 - 1/e`` of the best batch).

    Parameters
    ----------
    rows : sequence of (r_c, M) arrays
        Design rows of each candidate, each row scaled by ``sqrt(beta * weight)`` so that
        its observation noise has unit variance.
    n : int
        Number to pick.
    factor : ndarray (M, k)
        ``L`` with ``Sigma = L L^T`` (:meth:`aceal.fit.solvers.Posterior.factor`).
    exclude : sequence of int
        Candidates not to pick (e.g. already chosen); they still condition ``Sigma`` (they
        will be labelled).

    Returns
    -------
    indices, gains : list of int, list of float
        Picks in order and each one's information gain (nats) at the time it was picked.

    Cost: ``O(n_c r M k)`` to start; per pick ``O(r^2 M)`` for each candidate whose gain
    has to be re-evaluated (lazy greedy: usually a few).
    """
    x = [np.atleast_2d(np.asarray(r, dtype=float)) for r in rows]
    if not x:
        return [], []
    lf = np.asarray(factor, dtype=float)
    m = lf.shape[0]
    for r in x:
        if r.shape[1] != m:
            raise AcealInputError(f"candidate rows have {r.shape[1]} columns, posterior {m}")
        if not np.isfinite(r).all():
            raise AcealInputError("candidate design rows contain NaN or inf")
    # C_c = X_c Sigma X_c^T under the current Sigma = L L^T - sum_p W_p W_p^T, where each
    # pick p adds W_p = Sigma X_p^T chol(I + X_p Sigma X_p^T)^{-T}.  Lazy greedy: gains only
    # shrink as Sigma is conditioned, so a candidate's C_c is brought up to date (its
    # missing downdates applied) only when its last gain could still be the largest.
    g = [r @ lf for r in x]
    gram = [gi @ gi.T for gi in g]
    applied = [0] * len(x)
    downdates: list[np.ndarray] = []          # the W's, (M, r_p) each

    def refresh(c: int) -> float:
        for w in downdates[applied[c]:]:
            p = x[c] @ w
            gram[c] -= p @ p.T
        applied[c] = len(downdates)
        return 0.5 * float(np.linalg.slogdet(np.eye(len(gram[c])) + gram[c])[1])

    def condition(c: int) -> None:
        refresh(c)
        sx = lf @ (lf.T @ x[c].T)                      # Sigma @ X^T, (M, r)
        for w in downdates:
            sx -= w @ (w.T @ x[c].T)
        ch = np.linalg.cholesky(np.eye(x[c].shape[0]) + gram[c])
        downdates.append(np.linalg.solve(ch, sx.T).T)  # Sigma X^T C^{-T}

    excluded = {int(e) for e in exclude}
    for c in sorted(excluded):
        condition(c)
    available = [i for i in range(len(x)) if i not in excluded]
    bound = {i: refresh(i) for i in available}         # upper bounds of the gains
    indices: list[int] = []
    gains: list[float] = []
    while bound and len(indices) < n:
        while True:
            best = max(bound, key=lambda i: (bound[i], -i))
            if applied[best] == len(downdates):
                break
            bound[best] = refresh(best)
        indices.append(best)
        gains.append(bound.pop(best))
        if bound and len(indices) < n:
            condition(best)
    return indices, gains


@dataclass(frozen=True)
class BatchSelection:
    """Chosen candidates with one reason each, in the order they were picked.

    Attributes
    ----------
    indices : list of int
        Candidate indices.
    reasons : list of str
        Why each was picked (priority, distance, log-det or entropy gain).
    method : str
        The selection method used.
    values : list of float
        The criterion value behind each pick (NaN for priority picks).
    """

    indices: list[int]
    reasons: list[str]
    method: str
    values: list[float]


def select_batch(
    candidates: Sequence[np.ndarray] | np.ndarray,
    n: int,
    method: str = "fps",
    *,
    training: np.ndarray | Sequence[np.ndarray] | None = None,
    priority: Sequence[int] = (),
    standardize: bool = True,
    regularization: float = 1e-6,
    n_neighbors: int = 1,
    min_distance: float = 1e-3,
    rows: Sequence[np.ndarray] | None = None,
    factor: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> BatchSelection:
    """Pick ``n`` diverse candidates to label.

    Parameters
    ----------
    candidates : sequence of (n_atoms_i, n_features) arrays, or (n_candidates, n_features)
        Per-atom descriptors of each candidate configuration (a 2-D array: one feature row
        per candidate).
    n : int
        Batch size.
    method : {"fps", "d-optimal", "entropy", "information", "random"}
        Diversity criterion (see module docstring).
    training : ndarray (n_train_atoms, n_features) or sequence of such blocks, optional
        Per-atom descriptors of the training set, so that the batch avoids what is known.
        Given per configuration (a sequence), fps compares configuration means with
        configuration means; given as one array, fps treats every training atom as a
        covered point.
    priority : sequence of int
        Candidates taken first, in this order (e.g. rare-event snapshots).
    standardize : bool
        Scale features by their standard deviation over training plus candidates
        (fps and d-optimal; entropy always standardises).
    regularization : float
        Relative ridge of the information matrix (d-optimal).
    n_neighbors, min_distance :
        Entropy estimator settings (entropy; see :func:`.entropy.knn_entropy`).
    rows, factor :
        ``"information"`` only (required there): each candidate's unit-noise design rows
        and the posterior factor ``L`` (``Sigma = L L^T``), see
        :func:`greedy_information_gain`.  ``training`` is not used: the posterior already
        holds the training set.
    rng : numpy Generator
        ``"random"`` only (required there).

    Returns
    -------
    BatchSelection
        At most ``n`` indices (fewer if there are fewer candidates).
    """
    blocks = _as_blocks(candidates)
    d = blocks[0].shape[1]
    train_means = None
    if training is None or (isinstance(training, np.ndarray) and training.ndim == 2):
        train = None if training is None else np.asarray(training, dtype=float)
    else:
        train_blocks = _as_blocks(training)
        train = np.vstack(train_blocks)
        train_means = np.stack([b.mean(axis=0) for b in train_blocks])
    if train is not None and train.size and train.shape[1] != d:
        raise AcealInputError(f"training has {train.shape[1]} features, candidates have {d}")
    n = min(int(n), len(blocks))
    chosen = []
    for p in priority:
        p = int(p)
        if not 0 <= p < len(blocks):
            raise AcealInputError(f"priority index {p} out of range for {len(blocks)} candidates")
        if p not in chosen and len(chosen) < n:
            chosen.append(p)
    indices = list(chosen)
    reasons = ["priority (rare event)"] * len(chosen)
    values = [float("nan")] * len(chosen)
    remaining = n - len(chosen)
    if remaining <= 0:
        return BatchSelection(indices, reasons, method, values)
    if method == "random":
        if rng is None:
            raise AcealInputError("selection method 'random' needs a random generator (rng)")
        rest = [i for i in range(len(blocks)) if i not in chosen]
        picks = sorted(int(i) for i in rng.choice(rest, size=remaining, replace=False))
        return BatchSelection(indices + picks, reasons + ["uniformly random"] * remaining,
                              method, values + [float("nan")] * remaining)

    scale = np.ones(d)
    if standardize and method in ("fps", "d-optimal"):
        everything = np.concatenate(([train] if train is not None and train.size else []) + blocks)
        scale = everything.std(axis=0)
        scale[scale <= 0] = 1.0
    scaled = [b / scale for b in blocks]
    covered = [train / scale] if train is not None and train.size else []
    covered += [scaled[i] for i in chosen]

    if method == "fps":
        feats = np.stack([b.mean(axis=0) for b in scaled])
        existing_feats = None
        if train_means is not None:
            existing_feats = train_means / scale
        elif train is not None and train.size:
            # training given as one array: each training atom is a covered point
            existing_feats = train / scale
        if chosen:
            extra = feats[chosen]
            existing_feats = extra if existing_feats is None else np.vstack([existing_feats, extra])
        pool = [i for i in range(len(blocks)) if i not in chosen]
        picks, dists = farthest_point_sampling(feats[pool], remaining, existing_feats)
        for p, dist in zip(picks, dists, strict=True):
            indices.append(pool[p])
            reasons.append(f"fps: distance {dist:.4g} (standardised) to nearest covered point")
            values.append(dist)
    elif method == "d-optimal":
        existing = np.vstack(covered) if covered else None
        picks, gains = greedy_d_optimal(scaled, remaining, existing, regularization, chosen)
        for p, g in zip(picks, gains, strict=True):
            indices.append(p)
            reasons.append(f"d-optimal: log det gain {g:.4g}")
            values.append(g)
    elif method == "entropy":
        base = [train] if train is not None and train.size else []
        base += [blocks[i] for i in chosen]
        pool = [i for i in range(len(blocks)) if i not in chosen]
        result = select_max_entropy(
            np.vstack(base) if base else None,
            [blocks[i] for i in pool],
            remaining,
            n_neighbors=n_neighbors,
            min_distance=min_distance,
        )
        for p, g in zip(result.indices, result.gains, strict=True):
            indices.append(pool[p])
            reasons.append(f"entropy: gain {g:.4g} nats")
            values.append(g)
    elif method == "information":
        if rows is None or factor is None or len(rows) != len(blocks):
            raise AcealInputError("selection method 'information' needs the candidates' "
                                  "design rows and the posterior factor")
        picks, gains = greedy_information_gain(rows, remaining, factor, exclude=chosen)
        for p, g in zip(picks, gains, strict=True):
            indices.append(p)
            reasons.append(f"information: gain {g:.4g} nats")
            values.append(g)
    else:
        raise AcealInputError(
            f"unknown selection method {method!r}; use 'fps', 'd-optimal', 'entropy', "
            "'information' or 'random'"
        )
    return BatchSelection(indices, reasons, method, values)
