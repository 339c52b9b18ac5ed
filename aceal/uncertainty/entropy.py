"""Information entropy of a descriptor distribution and greedy entropy-maximising selection.

Montes de Oca Zapiain et al. (2022) generate training sets that maximise the information
entropy of the distribution of per-atom descriptors; such sets transfer better than
expert-curated ones. We estimate that entropy with the Kozachenko-Leonenko k-nearest-
neighbour estimator (nats):

    H = psi(N) - psi(k) + log V_d + (d / N) sum_i log eps_i

where ``N`` points live in ``d`` dimensions, ``eps_i`` is the distance from point ``i`` to
its k-th nearest neighbour and ``V_d`` is the volume of the unit d-ball. It needs no
bandwidth, is consistent, and a new point changes only the terms of its neighbours, so
greedy selection is cheap.

Choices and limits:

* Descriptors are first standardised (zero mean, unit variance per feature) and reduced
  by PCA to at most ``max_components`` (default 8) components keeping ``variance`` (default
  0.99) of the variance: kNN estimates degrade quickly with dimension (bias grows and
  N must grow exponentially with d), so only relative values (gains) are meaningful.
* The transform must be the same for all quantities compared; it is fitted once on the
  training set plus all candidates (a transform fitted on training data alone would hide
  directions in which only the candidates vary).
* Identical environments (perfect crystals, symmetric slabs) make the distribution a sum
  of Dirac peaks, whose differential entropy is minus infinity: a perfect 36-atom slab
  would *lower* the estimate however new it is. So environments closer than the
  resolution ``min_distance`` (default 1e-3 in standardised units) count once: each set
  of points is de-duplicated (on a grid of that spacing, and against the pool for new
  points) before the estimate, and k-th neighbour distances are floored at
  ``min_distance``. The estimate is thus the entropy of the *distinct* environments:
  adding an exact copy of known data gains exactly 0, adding more samples of the same
  distribution gains about 0 (the estimator is consistent), and new environments gain.
  Fewer than ``k + 1`` distinct environments give ``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from aceal.errors import AcealInputError

__all__ = [
    "DescriptorTransform",
    "EntropySelection",
    "descriptor_entropy",
    "entropy_gain",
    "knn_entropy",
    "select_max_entropy",
    "unique_environments",
]


@dataclass(frozen=True)
class DescriptorTransform:
    """Standardisation followed by a PCA projection: ``((X - mean) / scale) @ components``.

    Attributes
    ----------
    mean, scale : ndarray, shape (n_features,)
        Per-feature mean and standard deviation (1 where a feature is constant).
    components : ndarray, shape (n_features, n_components)
        Orthonormal principal directions of the standardised data.
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(
        cls, descriptors: np.ndarray, variance: float = 0.99, max_components: int = 8
    ) -> DescriptorTransform:
        """Fit on per-atom descriptors, shape (n_atoms, n_features)."""
        x = _as_2d(descriptors)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale <= 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0)))] = 1.0
        z = (x - mean) / scale
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        power = s**2
        total = power.sum()
        if total <= 0:
            n_keep = 1
        else:
            n_keep = int(np.searchsorted(np.cumsum(power) / total, variance) + 1)
        n_keep = max(1, min(n_keep, max_components, vt.shape[0]))
        return cls(mean, scale, vt[:n_keep].T)

    def __call__(self, descriptors: np.ndarray) -> np.ndarray:
        """Transform per-atom descriptors to the reduced space, shape (n_atoms, n_components)."""
        return ((_as_2d(descriptors) - self.mean) / self.scale) @ self.components

    @property
    def n_components(self) -> int:
        """Dimension of the reduced space."""
        return int(self.components.shape[1])


def _as_2d(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise AcealInputError(
            f"descriptors must be a 2-D array (n_atoms, n_features), got {a.shape}"
        )
    if not np.isfinite(a).all():
        raise AcealInputError("descriptors contain NaN or inf")
    return a


def _log_unit_ball(d: int) -> float:
    return 0.5 * d * np.log(np.pi) - float(gammaln(0.5 * d + 1.0))


def _kl_from_distances(kth: np.ndarray, n: int, d: int, k: int, min_distance: float) -> float:
    logs = np.log(np.maximum(kth, min_distance))
    return float(digamma(n) - digamma(k) + _log_unit_ball(d) + d * logs.mean())


def unique_environments(points: np.ndarray, resolution: float) -> np.ndarray:
    """Rows of ``points`` with duplicates removed on a grid of spacing ``resolution``.

    Rows falling in the same grid cell count once (the first is kept), so exact copies
    always merge; near-copies straddling a cell boundary may both be kept.
    """
    x = _as_2d(points)
    if len(x) < 2 or resolution <= 0:
        return x
    keys = np.floor(x / resolution).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return x[np.sort(first)]


def knn_entropy(
    points: np.ndarray, k: int = 1, min_distance: float = 1e-3, deduplicate: bool = True
) -> float:
    """Kozachenko-Leonenko differential entropy (nats) of points, shape (n, d).

    Parameters
    ----------
    points : ndarray, shape (n_points, d)
        Samples, already in the space where entropy is measured (e.g. transformed).
    k : int
        Neighbour order; k = 1 has the least bias, larger k less variance.
    min_distance : float
        Resolution (same units as ``points``): floor on the k-th neighbour distance and
        grid spacing for de-duplication.
    deduplicate : bool
        Count environments closer than ``min_distance`` once (see module docstring).

    Returns
    -------
    float
        Entropy in nats; ``-inf`` if there are not more than ``k`` (distinct) points.
    """
    x = _as_2d(points)
    if deduplicate:
        x = unique_environments(x, min_distance)
    n, d = x.shape
    if n <= k:
        return -np.inf
    dist, _ = cKDTree(x).query(x, k=k + 1)
    return _kl_from_distances(dist[:, k], n, d, k, min_distance)


def descriptor_entropy(
    descriptors: np.ndarray,
    transform: DescriptorTransform | None = None,
    k: int = 1,
    min_distance: float = 1e-3,
) -> float:
    """Entropy (nats) of per-atom descriptors after ``transform`` (fitted on them if None)."""
    x = _as_2d(descriptors)
    transform = DescriptorTransform.fit(x) if transform is None else transform
    return knn_entropy(transform(x), k, min_distance)


class _Pool:
    """Points with their sorted k-nearest-neighbour distances, for cheap incremental updates."""

    def __init__(self, points: np.ndarray, k: int, resolution: float) -> None:
        self.k = k
        self.resolution = resolution
        points = unique_environments(points, resolution) if len(points) else points
        self.points = points
        self.tree = cKDTree(points) if len(points) else None
        if len(points) > k:
            dist, _ = self.tree.query(points, k=k + 1)
            self.knn = np.asarray(dist[:, 1:]).reshape(len(points), k)
        else:
            self.knn = np.full((len(points), k), np.inf)
            if len(points) > 1:
                dist, _ = self.tree.query(points, k=len(points))
                self.knn[:, : len(points) - 1] = dist[:, 1:]

    def merged(self, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """k-NN distances of the old and new points once ``new`` joins the pool."""
        k = self.k
        m = len(new)
        own_tree = cKDTree(new)
        kk = min(k + 1, m)
        own, _ = own_tree.query(new, k=kk)
        own = np.asarray(own).reshape(m, kk)[:, 1:]
        if self.tree is None:
            new_knn = np.full((m, k), np.inf)
            new_knn[:, : own.shape[1]] = own[:, :k]
            return self.knn, new_knn
        kp = min(k, len(self.points))
        to_pool, _ = self.tree.query(new, k=kp)
        to_pool = np.asarray(to_pool).reshape(m, kp)
        new_knn = np.sort(np.concatenate([own, to_pool], axis=1), axis=1)[:, :k]
        if new_knn.shape[1] < k:
            new_knn = np.pad(new_knn, ((0, 0), (0, k - new_knn.shape[1])), constant_values=np.inf)
        km = min(k, m)
        from_new, _ = own_tree.query(self.points, k=km)
        from_new = np.asarray(from_new).reshape(len(self.points), km)
        old_knn = np.sort(np.concatenate([self.knn, from_new], axis=1), axis=1)[:, :k]
        return old_knn, new_knn

    def novel(self, new: np.ndarray) -> np.ndarray:
        """The rows of ``new`` that are distinct from each other and from the pool."""
        new = unique_environments(new, self.resolution)
        if self.tree is None or len(new) == 0:
            return new
        dist, _ = self.tree.query(new, k=1)
        return new[np.asarray(dist) >= self.resolution]

    def entropy_with(self, new: np.ndarray, min_distance: float) -> float:
        """Entropy (nats) of the pool plus the novel rows of ``new`` (-inf: too few)."""
        new = self.novel(new)
        if len(new) == 0:
            return self.entropy(min_distance)
        n = len(self.points) + len(new)
        if n <= self.k:
            return -np.inf
        old_knn, new_knn = self.merged(new)
        kth = np.concatenate([old_knn[:, -1], new_knn[:, -1]])
        return _kl_from_distances(kth, n, self.points.shape[1], self.k, min_distance)

    def entropy(self, min_distance: float) -> float:
        """Entropy (nats) of the pool alone; -inf if there are too few points."""
        n = len(self.points)
        if n <= self.k:
            return -np.inf
        return _kl_from_distances(self.knn[:, -1], n, self.points.shape[1], self.k, min_distance)

    def add(self, new: np.ndarray) -> None:
        """Add the novel rows of ``new`` to the pool (rebuilds the tree)."""
        new = self.novel(new)
        if len(new) == 0:
            return
        old_knn, new_knn = self.merged(new)
        self.points = np.concatenate([self.points, new]) if len(self.points) else new
        self.knn = np.concatenate([old_knn, new_knn])
        self.tree = cKDTree(self.points)


def entropy_gain(
    train_desc: np.ndarray,
    candidate_desc: np.ndarray,
    transform: DescriptorTransform | None = None,
    k: int = 1,
    min_distance: float = 1e-3,
) -> float:
    """Entropy change (nats) when a candidate's per-atom descriptors join the training set.

    Parameters
    ----------
    train_desc : ndarray, shape (n_train_atoms, n_features)
        Per-atom descriptors of the training set.
    candidate_desc : ndarray, shape (n_candidate_atoms, n_features)
        Per-atom descriptors of one candidate configuration.
    transform : DescriptorTransform, optional
        Default: fitted on training plus candidate.
    k, min_distance :
        As in :func:`knn_entropy` (duplicates are always merged here).

    Returns
    -------
    float
        ``H(train + candidate) - H(train)``; positive when the candidate spreads the
        distribution, negative for near-duplicates of training environments.
    """
    train = _as_2d(train_desc)
    cand = _as_2d(candidate_desc)
    if transform is None:
        transform = DescriptorTransform.fit(np.concatenate([train, cand]))
    pool = _Pool(transform(train), k, min_distance)
    return pool.entropy_with(transform(cand), min_distance) - pool.entropy(min_distance)


@dataclass(frozen=True)
class EntropySelection:
    """Result of :func:`select_max_entropy`.

    Attributes
    ----------
    indices : list of int
        Chosen candidates, in the order they were picked.
    gains : list of float
        Entropy gain (nats) of each pick given the pool at the time.
    entropy : list of float
        Entropy (nats) of the pool after each pick (``initial_entropy`` before any).
    initial_entropy : float
        Entropy (nats) of the training set alone (-inf if it has too few atoms).
    transform : DescriptorTransform
        The transform used (reuse it to compare later numbers).
    """

    indices: list[int]
    gains: list[float]
    entropy: list[float]
    initial_entropy: float
    transform: DescriptorTransform


def select_max_entropy(
    train_desc: np.ndarray | None,
    candidates_desc_list: Sequence[np.ndarray],
    k: int,
    *,
    n_neighbors: int = 1,
    min_distance: float = 1e-3,
    min_gain: float | None = None,
    transform: DescriptorTransform | None = None,
) -> EntropySelection:
    """Greedily pick up to ``k`` candidate configurations that add the most entropy.

    Each round evaluates, for every remaining candidate, the entropy of the pool (training
    set plus the picks so far) with that candidate's atoms added, picks the best, and adds
    it to the pool before the next round.

    Parameters
    ----------
    train_desc : ndarray (n_train_atoms, n_features) or None
        Per-atom descriptors of the current training set (None or empty: start empty).
    candidates_desc_list : sequence of ndarray (n_atoms_i, n_features)
        Per-atom descriptors of each candidate configuration.
    k : int
        Maximum number of candidates to pick.
    n_neighbors : int
        Neighbour order of the Kozachenko-Leonenko estimator.
    min_distance : float
        Distance floor in transformed units (see module docstring).
    min_gain : float, optional
        Stop once the best remaining gain (nats) is not above this (e.g. 0.0). Default:
        always pick ``k``.
    transform : DescriptorTransform, optional
        Default: fitted on training plus all candidates.
    """
    cands = [_as_2d(c) for c in candidates_desc_list]
    if not cands:
        raise AcealInputError("select_max_entropy needs at least one candidate")
    n_features = cands[0].shape[1]
    train = np.empty((0, n_features)) if train_desc is None else _as_2d(train_desc)
    if any(c.shape[1] != n_features for c in cands) or train.shape[1] != n_features:
        raise AcealInputError("all descriptors must have the same number of features")
    if transform is None:
        transform = DescriptorTransform.fit(np.concatenate([train, *cands]))
    reduced = [transform(c) for c in cands]
    pool = _Pool(transform(train), n_neighbors, min_distance)
    initial = current = pool.entropy(min_distance)
    remaining = list(range(len(cands)))
    indices: list[int] = []
    gains: list[float] = []
    entropies: list[float] = []
    while remaining and len(indices) < k:
        values = np.array([pool.entropy_with(reduced[i], min_distance) for i in remaining])
        best = int(np.argmax(values))
        value = float(values[best])
        gain = value - current if np.isfinite(current) else value
        if min_gain is not None and not gain > min_gain:
            break
        chosen = remaining.pop(best)
        pool.add(reduced[chosen])
        indices.append(chosen)
        gains.append(float(gain))
        entropies.append(value)
        current = value
    return EntropySelection(indices, gains, entropies, float(initial), transform)
