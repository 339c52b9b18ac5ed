"""The linear ACE basis: enumeration + coupling, turned into :mod:`aceal.basis.ctilde` form."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from aceal.basis.coupling import canonical_groups, invariant_couplings
from aceal.basis.ctilde import (
    RADIAL_BASES,
    Bond,
    CTildeFunction,
    CTildePotential,
    Embedding,
)
from aceal.basis.spec import (
    Multiset,
    degree,
    enumerate_multisets,
    multiset_arrays,
    normalize_max_degree,
)
from aceal.errors import AcealInputError

__all__ = ["ACEBasis", "DEFAULT_RADIAL_PARAMETERS"]

DEFAULT_RADIAL_PARAMETERS: dict[str, list[float]] = {
    "SBessel": [5.25],  # not used by SBessel, kept for PACE files
    "ChebExpCos": [5.25],
    "ChebPow": [2.0],
    "ChebLinear": [5.25],  # not used by ChebLinear
}

_VALID_SYMBOLS = frozenset(chemical_symbols[1:])


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


class ACEBasis:
    """Linear Atomic Cluster Expansion basis of rotation-, inversion- and permutation-invariant
    functions ``B_k`` of an atom's neighbourhood; the site energy is ``E_i = sum_k c_k B_k``.

    Parameters
    ----------
    elements : sequence of str
        Chemical symbols; their order defines the species indices ``mu = 0..``.
    order : int
        Maximal correlation order (body order minus one) ``nu``, ``>= 1``.
    max_degree : float or sequence of float
        Total-degree bound, one number for all orders or one value per order
        ``nu = 1..order``.  **Degree** of a function with factors ``(mu_t, n_t, l_t)``::

            deg = sum_{t=1..nu} (n_t + w_l * l_t)

        with 1-based radial indices ``n_t`` and angular momenta ``l_t``; a function of rank
        ``nu`` is kept if ``deg <= max_degree[nu - 1]``.
    r_cut : float or mapping
        Cutoff radius in Å; either one value or a mapping from element pairs (tuples
        ``("Cu", "Ni")`` or strings ``"Cu-Ni"``) to cutoffs, symmetric, covering every pair.
    radial_basis : str
        PACE radial basis name: ``"SBessel"`` (default), ``"ChebExpCos"``, ``"ChebPow"``
        or ``"ChebLinear"``.
    w_l : float
        Weight of ``l`` in the degree (default 1.5).
    lmax : int, optional
        Additional cap on every ``l_t``.
    r_in, delta_in : float
        Inner cutoff (Å) of type ``"distance"``: ACE radial functions are switched off below
        ``r_in - delta_in`` (``rcut_in``/``dcut_in`` of the bonds).  0 disables it.
    dcut : float
        Width (Å) of the outer cutoff smoothing (``Bond.dcut``).
    radial_parameters : sequence of float, optional
        ``radparameters`` of the radial basis, e.g. ``[lambda]`` for ``ChebExpCos``/
        ``ChebPow``; default from :data:`DEFAULT_RADIAL_PARAMETERS`.
    delta_spline_bins : float
        Radial spline step (Å) used by the kernel.

    Attributes
    ----------
    functions : list of CTildeFunction
        All basis functions in global order ``k = 0..len(basis)-1``; each has
        ``ctildes`` of shape ``(nms, 1)`` so that
        ``B_k = sum_s ctildes[s, 0] Re(prod_t A[mus[t], ns[t], ls[t], ms_combs[s, t]])``
        (rank 1: ``B_k = A1[mu, n]``).  The order is deterministic: sorted by
        ``(rank, mu0, mus, ns, ls, j)`` where ``j`` numbers the independent invariants of
        one multiset (see :mod:`aceal.basis.coupling`).
    degrees : numpy.ndarray
        Total degree of each function (float).
    orders : numpy.ndarray
        Rank (correlation order) of each function.
    species : numpy.ndarray
        Central species index ``mu0`` of each function.
    multisets : list of tuple
        The ``((mu, n, l), ...)`` multiset of each function.
    sub_index : numpy.ndarray
        Index ``j`` of each function among the invariants of its ``(mu0, multiset)``.
    max_degrees : list of float
        ``max_degree`` expanded to one value per order.
    nradbase, nradmax, lmax : int
        Largest ``n`` of all functions, largest ``n`` of rank >= 2 functions (0 if
        ``order == 1``) and largest ``l`` used; ``lmax_cap`` is the constructor's ``lmax``.
    r_cut : numpy.ndarray
        ``(nelements, nelements)`` symmetric cutoff matrix (Å).
    bonds : dict
        :class:`~aceal.basis.ctilde.Bond` for every ordered species pair ``(mu_i, mu_j)``
        (same radial basis sizes for all pairs), with ``crad[n, l, k] = delta_nk``
        (``R_nl = g_n``) and cutoff ``r_cut[mu_i, mu_j]``.

    Notes
    -----
    Rank-``nu >= 2`` invariants use only even ``sum_t l_t`` (inversion-invariant and real).
    The multisets are the same for every central species.
    """

    def __init__(
        self,
        elements: Sequence[str] = ("Mo",),
        order: int = 3,
        max_degree: float | Sequence[float] = 12,
        r_cut: float | Mapping[Any, float] = 5.0,
        radial_basis: str = "SBessel",
        w_l: float = 1.5,
        lmax: int | None = None,
        r_in: float = 0.0,
        delta_in: float = 0.0,
        dcut: float = 0.01,
        radial_parameters: Sequence[float] | None = None,
        delta_spline_bins: float = 0.001,
    ) -> None:
        self.elements = self._check_elements(elements)
        nel = len(self.elements)
        if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
            raise AcealInputError(f"order must be an integer >= 1, got {order!r}")
        self.order = int(order)
        self._max_degree_arg = self._check_max_degree(max_degree, self.order)
        self.max_degrees = normalize_max_degree(self._max_degree_arg, self.order)
        if not _is_number(w_l) or not math.isfinite(w_l) or w_l < 0:
            raise AcealInputError(f"w_l must be a finite number >= 0, got {w_l!r}")
        self.w_l = float(w_l)
        if lmax is not None and (
            isinstance(lmax, bool) or not isinstance(lmax, int | np.integer) or lmax < 0
        ):
            raise AcealInputError(f"lmax must be None or an integer >= 0, got {lmax!r}")
        self.lmax_cap = None if lmax is None else int(lmax)
        if self.w_l == 0 and self.lmax_cap is None:
            raise AcealInputError("w_l = 0 needs an explicit lmax (otherwise l is unbounded)")
        if radial_basis not in RADIAL_BASES:
            raise AcealInputError(
                f"radial_basis must be one of {', '.join(RADIAL_BASES)}, got {radial_basis!r}"
            )
        self.radial_basis = radial_basis
        for name, val in (("r_in", r_in), ("delta_in", delta_in), ("dcut", dcut)):
            if not _is_number(val) or not math.isfinite(val) or val < 0:
                raise AcealInputError(f"{name} must be a finite number >= 0 (Å), got {val!r}")
        self.r_in, self.delta_in, self.dcut = float(r_in), float(delta_in), float(dcut)
        if self.delta_in > self.r_in:
            raise AcealInputError(f"delta_in ({self.delta_in}) must not exceed r_in ({self.r_in})")
        self.r_cut = self._check_r_cut(r_cut)
        if self.r_in >= self.r_cut.min():
            raise AcealInputError(
                f"r_in ({self.r_in} Å) must be smaller than every r_cut "
                f"(smallest {self.r_cut.min()} Å)"
            )
        if radial_parameters is None:
            self.radial_parameters = list(DEFAULT_RADIAL_PARAMETERS[radial_basis])
        else:
            try:
                self.radial_parameters = [float(v) for v in radial_parameters]
            except (TypeError, ValueError):
                raise AcealInputError(
                    f"radial_parameters must be a list of numbers, got {radial_parameters!r}"
                ) from None
        if not _is_number(delta_spline_bins) or not delta_spline_bins > 0:
            raise AcealInputError(
                f"delta_spline_bins must be a number > 0 (Å), got {delta_spline_bins!r}"
            )
        self.delta_spline_bins = float(delta_spline_bins)
        self._build(nel)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_elements(elements: Sequence[str]) -> list[str]:
        if isinstance(elements, str):
            elements = [elements]
        try:
            els = list(elements)
        except TypeError:
            raise AcealInputError(
                f"elements must be a list of chemical symbols, got {elements!r}"
            ) from None
        if not els:
            raise AcealInputError("elements must contain at least one chemical symbol")
        for el in els:
            if not isinstance(el, str) or el not in _VALID_SYMBOLS:
                raise AcealInputError(f"elements: unknown element symbol {el!r}")
        if len(set(els)) != len(els):
            raise AcealInputError(f"elements: duplicate symbols in {els}")
        return [str(e) for e in els]

    @staticmethod
    def _check_max_degree(max_degree: Any, order: int) -> float | list[float]:
        if _is_number(max_degree):
            vals = [max_degree]
        elif isinstance(max_degree, Sequence) and not isinstance(max_degree, str):
            vals = list(max_degree)
            if len(vals) != order:
                raise AcealInputError(
                    f"max_degree must be a number or a list of {order} values (one per "
                    f"order), got {len(vals)} values"
                )
        else:
            raise AcealInputError(f"max_degree must be a number or a list, got {max_degree!r}")
        for v in vals:
            if not _is_number(v) or not math.isfinite(v):
                raise AcealInputError(f"max_degree values must be finite numbers, got {v!r}")
            if v < 0:
                raise AcealInputError(f"max_degree must not be negative, got {v!r}")
        plain = [int(v) if float(v).is_integer() else float(v) for v in vals]
        return plain[0] if _is_number(max_degree) else plain

    def _check_r_cut(self, r_cut: Any) -> np.ndarray:
        nel = len(self.elements)

        def check(val: Any, what: str) -> float:
            if not _is_number(val) or not math.isfinite(val) or val <= 0:
                raise AcealInputError(f"r_cut{what} must be a number > 0 (Å), got {val!r}")
            return float(val)

        if _is_number(r_cut):
            self._r_cut_arg: float | dict[str, float] = check(r_cut, "")
            return np.full((nel, nel), self._r_cut_arg)
        if not isinstance(r_cut, Mapping):
            raise AcealInputError(
                f"r_cut must be a number or a mapping of element pairs, got {r_cut!r}"
            )
        rc = np.full((nel, nel), np.nan)
        index = {el: i for i, el in enumerate(self.elements)}
        for key, val in r_cut.items():
            if isinstance(key, str):
                pair = tuple(key.split("-"))
            elif isinstance(key, Sequence):
                pair = tuple(key)
            else:
                pair = ()
            if len(pair) != 2 or any(p not in index for p in pair):
                raise AcealInputError(
                    f"r_cut: key {key!r} is not a pair of the elements {self.elements} "
                    f"(use ('A', 'B') or 'A-B')"
                )
            v = check(val, f"[{key!r}]")
            i, j = index[pair[0]], index[pair[1]]
            for a, b in ((i, j), (j, i)):
                if not np.isnan(rc[a, b]) and rc[a, b] != v:
                    raise AcealInputError(
                        f"r_cut: conflicting values for the pair {pair[0]}-{pair[1]}"
                    )
                rc[a, b] = v
        for i in range(nel):
            for j in range(i, nel):
                if np.isnan(rc[i, j]):
                    raise AcealInputError(
                        f"r_cut: missing cutoff for the pair {self.elements[i]}-{self.elements[j]}"
                    )
        self._r_cut_arg = {
            f"{self.elements[i]}-{self.elements[j]}": float(rc[i, j])
            for i in range(nel)
            for j in range(i, nel)
        }
        return rc

    # ------------------------------------------------------------------ construction
    def _build(self, nel: int) -> None:
        functions: list[CTildeFunction] = []
        multisets: list[Multiset] = []
        degrees: list[float] = []
        orders: list[int] = []
        species: list[int] = []
        sub_index: list[int] = []
        for rank in range(1, self.order + 1):
            msets = enumerate_multisets(
                nel, rank, self.max_degrees[rank - 1], self.w_l, self.lmax_cap
            )
            tables = []
            for mset in msets:
                mus, ns, ls = multiset_arrays(mset)
                if rank == 1:
                    tables.append((mset, mus, ns, ls, None))
                    continue
                coup = invariant_couplings(ls, canonical_groups(mset))
                if coup.nfunc:
                    tables.append((mset, mus, ns, ls, coup))
            for mu0 in range(nel):
                for mset, mus, ns, ls, coup in tables:
                    deg = degree(mset, self.w_l)
                    mus_a = np.array(mus, dtype=np.int64)
                    ns_a = np.array(ns, dtype=np.int64)
                    ls_a = np.array(ls, dtype=np.int64)
                    if coup is None:
                        rows = [(np.zeros((1, 1), dtype=np.int64), np.ones((1, 1)))]
                    else:
                        rows = []
                        for j in range(coup.nfunc):
                            c = coup.coeffs_half[j]
                            nz = c != 0.0
                            rows.append(
                                (
                                    np.ascontiguousarray(coup.ms_half[nz]),
                                    np.ascontiguousarray(c[nz].reshape(-1, 1)),
                                )
                            )
                    for j, (ms_c, ct) in enumerate(rows):
                        functions.append(
                            CTildeFunction(
                                mu0=mu0,
                                mus=mus_a.copy(),
                                ns=ns_a.copy(),
                                ls=ls_a.copy(),
                                ms_combs=ms_c,
                                ctildes=ct,
                            )
                        )
                        multisets.append(mset)
                        degrees.append(deg)
                        orders.append(rank)
                        species.append(mu0)
                        sub_index.append(j)
        if not functions:
            raise AcealInputError(
                f"max_degree {self._max_degree_arg!r} is too small: the basis is empty "
                f"(a rank-1 function needs degree >= 1)"
            )
        self.functions = functions
        self.multisets = multisets
        self.degrees = np.array(degrees, dtype=float)
        self.orders = np.array(orders, dtype=np.int64)
        self.species = np.array(species, dtype=np.int64)
        self.sub_index = np.array(sub_index, dtype=np.int64)

        n1 = [m[0][1] for m, o in zip(multisets, orders, strict=True) if o == 1]
        nh = [f[1] for m, o in zip(multisets, orders, strict=True) if o >= 2 for f in m]
        lh = [f[2] for m, o in zip(multisets, orders, strict=True) if o >= 2 for f in m]
        self.nradmax = max(nh, default=0)
        self.nradbase = max(n1 + nh, default=0)
        self.lmax = max(lh, default=0)
        crad = np.zeros((self.nradmax, self.lmax + 1, self.nradbase))
        for n in range(self.nradmax):
            crad[n, :, n] = 1.0
        self.bonds: dict[tuple[int, int], Bond] = {}
        for i in range(nel):
            for j in range(nel):
                self.bonds[(i, j)] = Bond(
                    radbasename=self.radial_basis,
                    radparameters=list(self.radial_parameters),
                    nradbase=self.nradbase,
                    nradmax=self.nradmax,
                    lmax=self.lmax,
                    crad=crad.copy(),
                    rcut=float(self.r_cut[i, j]),
                    dcut=self.dcut,
                    rcut_in=self.r_in,
                    dcut_in=self.delta_in,
                    inner_cutoff_type="distance",
                )

    # ------------------------------------------------------------------ API
    def __len__(self) -> int:
        return len(self.functions)

    def __repr__(self) -> str:
        return (
            f"ACEBasis(elements={self.elements}, order={self.order}, "
            f"max_degree={self._max_degree_arg!r}, nfunctions={len(self)})"
        )

    @property
    def nelements(self) -> int:
        """Number of species."""
        return len(self.elements)

    @property
    def cutoff(self) -> float:
        """Largest cutoff radius (Å)."""
        return float(self.r_cut.max())

    def functions_by_species(self) -> dict[int, list[int]]:
        """Global indices ``k`` of the functions of each central species ``mu0``."""
        return {mu: np.flatnonzero(self.species == mu).tolist() for mu in range(self.nelements)}

    def labels(self) -> list[str]:
        """Human-readable label of every function, e.g. ``"Mo|Mo1s,Mo1p,Mo1p#0"``."""
        lname = "spdfghiklmnoqrtuv"
        out = []
        for k, mset in enumerate(self.multisets):
            facs = ",".join(
                f"{self.elements[mu]}{n}{lname[ll] if ll < len(lname) else ll}"
                for mu, n, ll in mset
            )
            out.append(f"{self.elements[self.species[k]]}|{facs}#{self.sub_index[k]}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Constructor arguments as a plain (YAML-safe) dict; see :meth:`from_dict`."""
        return {
            "elements": list(self.elements),
            "order": self.order,
            "max_degree": (
                list(self._max_degree_arg)
                if isinstance(self._max_degree_arg, list)
                else self._max_degree_arg
            ),
            "r_cut": (
                dict(self._r_cut_arg) if isinstance(self._r_cut_arg, dict) else self._r_cut_arg
            ),
            "radial_basis": self.radial_basis,
            "w_l": self.w_l,
            "lmax": self.lmax_cap,
            "r_in": self.r_in,
            "delta_in": self.delta_in,
            "dcut": self.dcut,
            "radial_parameters": list(self.radial_parameters),
            "delta_spline_bins": self.delta_spline_bins,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ACEBasis:
        """Rebuild a basis from :meth:`to_dict` output (identical functions and order)."""
        if not isinstance(d, Mapping):
            raise AcealInputError(f"basis description must be a mapping, got {type(d).__name__}")
        allowed = _CTOR_KEYS
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise AcealInputError(
                f"basis: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        return cls(**dict(d))

    def _check_coefficients(self, coefficients: Any) -> np.ndarray:
        coef = np.asarray(coefficients, dtype=float)
        if coef.ndim == 1:
            coef = coef[:, None]
        if coef.ndim != 2 or coef.shape[0] != len(self) or coef.shape[1] < 1:
            raise AcealInputError(
                f"coefficients must have shape ({len(self)},) or ({len(self)}, ndensity), "
                f"got {np.shape(coefficients)}"
            )
        if not np.all(np.isfinite(coef)):
            raise AcealInputError("coefficients contain NaN or inf")
        return coef

    def _check_e0(self, e0: Any) -> np.ndarray:
        nel = self.nelements
        if e0 is None:
            return np.zeros(nel)
        if isinstance(e0, Mapping):
            unknown = [k for k in e0 if k not in self.elements]
            if unknown:
                raise AcealInputError(f"e0: unknown element(s) {unknown}")
            return np.array([float(e0.get(el, 0.0)) for el in self.elements])
        arr = np.asarray(e0, dtype=float).reshape(-1)
        if arr.shape != (nel,):
            raise AcealInputError(f"e0 must have {nel} values (one per element), got {arr.size}")
        return arr

    def ctilde_potential(
        self,
        coefficients: Any,
        e0: Any = None,
        merge: bool = True,
    ) -> CTildePotential:
        """The linear potential ``E_i = E0[mu_i] + sum_k c_k B_k`` in C-tilde form.

        Parameters
        ----------
        coefficients : array_like
            Shape ``(len(basis),)`` (eV) or ``(len(basis), ndensity)`` for several linear
            read-outs (e.g. committee members); density ``p`` is ``sum_k c[k, p] B_k``.
        e0 : array_like or mapping, optional
            Reference energies (eV) per element (list in element order or dict by symbol).
        merge : bool
            If True (default) the invariants of one ``(mu0, multiset)`` are folded into a
            single :class:`CTildeFunction` (their ``ms_combs`` are shared) and groups with
            all-zero coefficients are omitted.  If False, one function per basis function in
            global order (``functions[mu]`` lists them in increasing ``k``).

        Returns
        -------
        CTildePotential
            With ``embeddings[mu] = Embedding(ndensity, npoti="linear")``.
        """
        coef = self._check_coefficients(coefficients)
        ndens = coef.shape[1]
        funcs: dict[int, list[CTildeFunction]] = {mu: [] for mu in range(self.nelements)}
        if not merge:
            for k, f in enumerate(self.functions):
                funcs[f.mu0].append(
                    CTildeFunction(
                        mu0=f.mu0,
                        mus=f.mus.copy(),
                        ns=f.ns.copy(),
                        ls=f.ls.copy(),
                        ms_combs=f.ms_combs.copy(),
                        ctildes=f.ctildes[:, :1] * coef[k][None, :],
                    )
                )
        else:
            k = 0
            nf = len(self)
            while k < nf:
                k_end = k + 1
                while (
                    k_end < nf
                    and self.species[k_end] == self.species[k]
                    and self.multisets[k_end] == self.multisets[k]
                ):
                    k_end += 1
                block = coef[k:k_end]
                if np.any(block != 0.0):
                    f0 = self.functions[k]
                    if f0.rank == 1:
                        ms_c = f0.ms_combs.copy()
                        ct = f0.ctildes[:, :1] * block[0][None, :]
                    else:
                        mset = self.multisets[k]
                        _, _, ls = multiset_arrays(mset)
                        coup = invariant_couplings(ls, canonical_groups(mset))
                        ms_c = coup.ms_half.copy()
                        ct = coup.coeffs_half.T @ block
                    funcs[f0.mu0].append(
                        CTildeFunction(
                            mu0=f0.mu0,
                            mus=f0.mus.copy(),
                            ns=f0.ns.copy(),
                            ls=f0.ls.copy(),
                            ms_combs=np.ascontiguousarray(ms_c),
                            ctildes=np.ascontiguousarray(ct),
                        )
                    )
                k = k_end
        fs = [1.0, 1.0] * ndens
        embeddings = {
            mu: Embedding(ndensity=ndens, npoti="linear", FS_parameters=list(fs))
            for mu in range(self.nelements)
        }
        bonds = {
            key: dataclasses.replace(b, crad=b.crad.copy(), radparameters=list(b.radparameters))
            for key, b in self.bonds.items()
        }
        return CTildePotential(
            elements=list(self.elements),
            e0=self._check_e0(e0),
            bonds=bonds,
            embeddings=embeddings,
            functions=funcs,
            delta_spline_bins=self.delta_spline_bins,
        )


_CTOR_KEYS = frozenset(
    {
        "elements",
        "order",
        "max_degree",
        "r_cut",
        "radial_basis",
        "w_l",
        "lmax",
        "r_in",
        "delta_in",
        "dcut",
        "radial_parameters",
        "delta_spline_bins",
    }
)
