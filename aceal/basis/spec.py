"""Enumeration of the ACE basis specification (which products of atomic bases to use).

A product function of correlation order (rank) ``nu`` is labelled by a central species
``mu0`` and a *multiset* of ``nu`` one-particle labels ``(mu, n, l)``: neighbour species
``mu`` (0-based index into the element list), radial index ``n >= 1`` (1-based, PACE
convention) and angular momentum ``l >= 0``.  Since the product of atomic bases is
symmetric under exchanging factors, a multiset is stored as a tuple of factors sorted
lexicographically by ``(mu, n, l)``.

Truncation (total degree)::

    deg = sum_t (n_t + w_l * l_t) <= max_degree[nu - 1]

Rank-1 functions have ``l = 0`` (they are the radial basis ``g_{n-1}`` itself, see
:mod:`aceal.basis.ctilde`).  For rank ``nu >= 2`` only multisets with even ``sum_t l_t``
and ``max_t l_t <= sum_t l_t - max_t l_t`` are kept (the others carry no rotation- and
inversion-invariant combination); multisets whose permutation-symmetrised invariants vanish
are removed later by :mod:`aceal.basis.coupling`.

The central species does not enter the enumeration: the same multisets are used for every
``mu0``.
"""

from __future__ import annotations

from collections.abc import Sequence

Factor = tuple[int, int, int]
"""One-particle label ``(mu, n, l)``; ``n`` is 1-based."""

Multiset = tuple[Factor, ...]

_EPS = 1e-9  # tolerance of the degree comparison (w_l * l is a float)

__all__ = [
    "Factor",
    "Multiset",
    "degree",
    "enumerate_multisets",
    "multiset_arrays",
    "one_particle_basis",
    "sort_key",
]


def degree(multiset: Multiset, w_l: float) -> float:
    """Total degree ``sum_t (n_t + w_l * l_t)`` of a multiset of ``(mu, n, l)`` factors."""
    return float(sum(n + w_l * ll for _, n, ll in multiset))


def one_particle_basis(
    nelements: int, max_degree: float, w_l: float, lmax: int | None = None
) -> list[Factor]:
    """All ``(mu, n, l)`` with ``n + w_l * l <= max_degree`` (and ``l <= lmax``), sorted.

    Parameters
    ----------
    nelements : int
        Number of species; ``mu = 0..nelements-1``.
    max_degree : float
        Largest single-factor degree.
    w_l : float
        Weight of ``l`` in the degree; with ``w_l == 0`` an ``lmax`` is required.
    lmax : int, optional
        Cap on ``l``.
    """
    if w_l <= 0 and lmax is None:
        raise ValueError("w_l <= 0 needs an explicit lmax")
    out: list[Factor] = []
    for mu in range(nelements):
        n = 1
        while n <= max_degree + _EPS:
            ll = 0
            while n + w_l * ll <= max_degree + _EPS and (lmax is None or ll <= lmax):
                out.append((mu, n, ll))
                ll += 1
            n += 1
    out.sort()
    return out


def _admissible(multiset: Multiset) -> bool:
    ls = [f[2] for f in multiset]
    if len(ls) == 1:
        return ls[0] == 0
    total = sum(ls)
    return total % 2 == 0 and 2 * max(ls) <= total


def enumerate_multisets(
    nelements: int,
    rank: int,
    max_degree: float,
    w_l: float = 1.5,
    lmax: int | None = None,
) -> list[Multiset]:
    """All admissible multisets of ``rank`` factors with total degree ``<= max_degree``.

    Parameters
    ----------
    nelements : int
        Number of species (neighbour species ``mu = 0..nelements-1``).
    rank : int
        Correlation order ``nu >= 1``.
    max_degree : float
        Bound on ``sum_t (n_t + w_l * l_t)``.
    w_l : float
        Weight of ``l`` in the degree.
    lmax : int, optional
        Cap on every ``l_t``.

    Returns
    -------
    list of tuple
        Multisets (tuples of ``(mu, n, l)`` sorted within), in the order of :func:`sort_key`.
    """
    if rank < 1:
        raise ValueError("rank must be >= 1")
    # Every other factor costs at least n = 1.
    single_max = max_degree - (rank - 1)
    if single_max < 1 - _EPS:
        return []
    one = one_particle_basis(nelements, single_max, w_l, 0 if rank == 1 else lmax)
    cost = [n + w_l * ll for _, n, ll in one]
    out: list[Multiset] = []

    def rec(start: int, chosen: list[Factor], budget: float) -> None:
        left = rank - len(chosen)
        if left == 0:
            ms = tuple(chosen)
            if _admissible(ms):
                out.append(ms)
            return
        for i in range(start, len(one)):
            # remaining factors cost >= 1 each
            if cost[i] + (left - 1) > budget + _EPS:
                continue
            chosen.append(one[i])
            rec(i, chosen, budget - cost[i])
            chosen.pop()

    rec(0, [], float(max_degree))
    out.sort(key=sort_key)
    return out


def multiset_arrays(multiset: Multiset) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Split a multiset into its ``(mus, ns, ls)`` tuples."""
    mus = tuple(f[0] for f in multiset)
    ns = tuple(f[1] for f in multiset)
    ls = tuple(f[2] for f in multiset)
    return mus, ns, ls


def sort_key(multiset: Multiset) -> tuple:
    """PACE-like order: rank, then ``mus``, ``ns``, ``ls`` lexicographically."""
    mus, ns, ls = multiset_arrays(multiset)
    return (len(multiset), mus, ns, ls)


def normalize_max_degree(max_degree: float | Sequence[float], order: int) -> list[float]:
    """Expand ``max_degree`` (a number or one value per order) to a list of ``order`` floats."""
    if isinstance(max_degree, Sequence) and not isinstance(max_degree, str):
        vals = [float(v) for v in max_degree]
        if len(vals) != order:
            raise ValueError(f"max_degree has {len(vals)} values but order is {order}")
        return vals
    return [float(max_degree)] * order
