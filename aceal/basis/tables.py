"""Flatten a :class:`~aceal.basis.ctilde.CTildePotential` into the arrays the kernels read.

Built once per model (plain numpy). Index conventions used by :mod:`aceal.kernels`:

* one-particle channel ``a = (mu * nradmax + n) * (lmax+1)**2 + l*l + l + m`` for
  ``n`` 0-based and ``m = -l..l``; rank-1 channel ``a1 = mu * nradbase + n``;
* spline functions of a bond ``[g_0..g_{nradbase-1}, R_nl (n-major), core]``;
* product terms ("ms-combinations") of central species ``mu0`` are
  ``comb_off[mu0]:comb_off[mu0+1]``; term ``s`` multiplies the channels
  ``comb_aidx[comb_aoff[s]:comb_aoff[s+1]]`` with coefficients ``comb_coef[s, :ndensity]``
  and belongs to basis function ``comb_func[s]`` (index within the flat function list);
* the energy kernel evaluates the product terms on a product graph (shared partial
  products, as PACE's recursive evaluator), one block per central species: block
  ``tree_off[mu0]:tree_off[mu0+1]`` lists the nodes (local index ``j``; ``j = 0`` is the
  empty product), the ``tree_nint[mu0]`` nodes with children first in level order, then
  the leaves; node ``j`` is ``A[tree_chan[b+j]]`` times its parent ``tree_parent[b+j] < j``
  (``b = tree_off[mu0]``), the parent being the node's channel multiset less one channel
  (:func:`product_tree`); term ``s`` (same order as ``comb_*``) is the product at local node
  ``term_node[s]``; ``tree_coef[b+j, p]`` sums the coefficients of density ``p`` of the
  terms at node ``j`` (built from ``comb_coef`` at construction: rebuild the tables rather
  than editing ``comb_coef`` in place).

The kernels take these arrays bundled in NamedTuples (numba passes them like the arrays
themselves): :attr:`KernelTables.base` (sizes, radial splines and the ``Y_lm`` recursion
coefficients: all that :func:`aceal.kernels.evaluate.atomic_base` reads),
:attr:`KernelTables.embedding` (per central species) and :attr:`KernelTables.densities`
(rank-1 functions and the product graph). Each is built once per tables object, on first
use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from aceal.basis.ctilde import CTildePotential
from aceal.basis.radial import hermite_coefficients, tabulate_bond
from aceal.errors import AcealInputError

EMBEDDING_CODES = {"linear": 0, "FinnisSinclair": 1, "FinnisSinclairShiftedScaled": 2}


class BaseTables(NamedTuple):
    """Sizes, radial splines and ``Y_lm`` recursion coefficients: what the atomic base ``A``
    of an atom needs (:func:`aceal.kernels.evaluate.atomic_base`). Splines per ordered
    species pair ``p = mu_i * nelem + mu_j``."""

    nelem: int
    lmax: int
    nradmax: int
    nradbase: int
    spline: np.ndarray  # (npairs, nlut_max + 1, nfunc, 4) Hermite coefficients
    nlut: np.ndarray  # (npairs,) int64
    rscale: np.ndarray  # (npairs,) nodes per Å
    rcut: np.ndarray  # (npairs,) Å
    rmin: np.ndarray  # (npairs,) Å, distances below this are overlaps
    ylm_coef: np.ndarray  # (4, lmax + 1, lmax + 1), see ylm_recursion_coefficients


class EmbeddingTables(NamedTuple):
    """Reference energies, embeddings and core-density cutoffs, per central species."""

    e0: np.ndarray  # (nelem,) eV
    emb_type: np.ndarray  # (nelem,) int64, EMBEDDING_CODES
    emb_params: np.ndarray  # (nelem, ndensity, 2): weight, exponent
    emb_ndens: np.ndarray  # (nelem,) int64
    rho_cut: np.ndarray  # (nelem,)
    drho_cut: np.ndarray  # (nelem,)


class DensityTables(NamedTuple):
    """The linear map from ``A1`` and the products of ``A`` to the densities ``rho_p``:
    rank-1 functions and the product graph (see the module docstring)."""

    r1_off: np.ndarray  # (nelem + 1,)
    r1_idx: np.ndarray  # (nr1,)
    r1_coef: np.ndarray  # (nr1, ndensity)
    tree_off: np.ndarray  # (nelem + 1,)
    tree_parent: np.ndarray  # (nnodes,) uint32, local
    tree_chan: np.ndarray  # (nnodes,) uint32
    tree_nint: np.ndarray  # (nelem,) int64
    tree_coef: np.ndarray  # (nnodes, ndensity)


def ylm_recursion_coefficients(lmax: int) -> np.ndarray:
    """Coefficients of the normalised associated-Legendre recursion, shape (4, lmax+1, lmax+1)
    (conventions: :mod:`aceal.kernels.sphharm`).

    ``[0]`` = a_lm, ``[1]`` = b_lm (three-term recursion in l), ``[2][l, 0]`` = c_l (diagonal),
    ``[3][l, 0]`` = d_l (first off-diagonal).
    """
    c = np.zeros((4, lmax + 1, lmax + 1))
    for l in range(1, lmax + 1):
        for m in range(0, l - 1):
            c[0, l, m] = math.sqrt((4.0 * l * l - 1.0) / (l * l - m * m))
            c[1, l, m] = -math.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1.0) ** 2 - 1.0))
        c[2, l, 0] = -math.sqrt(1.0 + 0.5 / l)
        c[3, l, 0] = math.sqrt(2.0 * (l - 1) + 3.0)
    return c


@dataclass
class KernelTables:
    """Arrays for :func:`aceal.kernels.evaluate.evaluate_atoms` (see module docstring).

    The bundles :attr:`base`, :attr:`embedding` and :attr:`densities` are built on first
    use and then kept: rebuild the tables rather than replacing their arrays.
    """

    nelem: int
    lmax: int
    nradmax: int
    nradbase: int
    ndensity: int
    # radial splines, per ordered pair p = mu_i * nelem + mu_j
    spline: np.ndarray  # (npairs, nlut_max + 1, nfunc, 4)
    nlut: np.ndarray  # (npairs,) int64
    rscale: np.ndarray  # (npairs,) nodes per Å
    rcut: np.ndarray  # (npairs,) Å
    rmin: np.ndarray  # (npairs,) Å, distances below this are overlaps
    # embeddings and reference energies, per central species
    e0: np.ndarray  # (nelem,) eV
    emb_type: np.ndarray  # (nelem,) int64
    emb_params: np.ndarray  # (nelem, ndensity, 2): weight, exponent
    emb_ndens: np.ndarray  # (nelem,) int64
    rho_cut: np.ndarray  # (nelem,)
    drho_cut: np.ndarray  # (nelem,)
    # rank-1 functions
    r1_off: np.ndarray  # (nelem + 1,)
    r1_idx: np.ndarray  # (nr1,)
    r1_coef: np.ndarray  # (nr1, ndensity)
    r1_func: np.ndarray  # (nr1,)
    # rank >= 2 product terms
    comb_off: np.ndarray  # (nelem + 1,)
    comb_aoff: np.ndarray  # (ncomb + 1,)
    comb_aidx: np.ndarray  # (sum of ranks,)
    comb_coef: np.ndarray  # (ncomb, ndensity)
    comb_func: np.ndarray  # (ncomb,)
    rankmax: int
    nfunc: int  # number of functions (rank 1 and higher) over all species
    # product terms on a product graph (energy kernel; see module docstring)
    tree_off: np.ndarray | None = None  # (nelem + 1,)
    tree_parent: np.ndarray | None = None  # (nnodes,) uint32, local
    tree_chan: np.ndarray | None = None  # (nnodes,) uint32
    tree_nint: np.ndarray | None = None  # (nelem,) internal nodes (incl. the root)
    term_node: np.ndarray | None = None  # (ncomb,) local
    tree_coef: np.ndarray | None = None  # (nnodes, ndensity)

    def __post_init__(self) -> None:
        if self.tree_off is None:
            (self.tree_off, self.tree_parent, self.tree_chan, self.tree_nint,
             self.term_node) = product_tree(self.comb_off, self.comb_aoff, self.comb_aidx)
        if self.tree_coef is None:
            self.tree_coef = np.zeros((len(self.tree_chan), self.ndensity))
            nodes = self.tree_off[np.repeat(np.arange(self.nelem), np.diff(self.comb_off))]
            np.add.at(self.tree_coef, nodes + self.term_node, self.comb_coef)

    @cached_property
    def base(self) -> BaseTables:
        """Sizes, splines and ``Y_lm`` coefficients (for the atomic base)."""
        return BaseTables(
            int(self.nelem), int(self.lmax), int(self.nradmax), int(self.nradbase),
            self.spline, self.nlut, self.rscale, self.rcut, self.rmin,
            ylm_recursion_coefficients(int(self.lmax)),
        )  # fmt: skip

    @cached_property
    def embedding(self) -> EmbeddingTables:
        """Reference energies, embeddings and core-density cutoffs per central species."""
        return EmbeddingTables(
            self.e0, self.emb_type, self.emb_params, self.emb_ndens, self.rho_cut, self.drho_cut
        )

    @cached_property
    def densities(self) -> DensityTables:
        """Rank-1 functions and the product graph (the map from the atomic base to rho_p)."""
        return DensityTables(
            self.r1_off, self.r1_idx, self.r1_coef, self.tree_off, self.tree_parent,
            self.tree_chan, self.tree_nint, self.tree_coef,
        )  # fmt: skip

    @property
    def cutoff(self) -> float:
        return float(self.rcut.max())

    @property
    def n_channels(self) -> int:
        return self.nelem * self.nradmax * (self.lmax + 1) ** 2


def _drop_one(key: tuple) -> list[tuple]:
    """The distinct sub-multisets of the sorted tuple ``key`` with one channel removed."""
    out: list[tuple] = []
    for k in range(len(key)):
        sub = key[:k] + key[k + 1 :]
        if not out or sub != out[-1]:
            out.append(sub)
    return out


def _choose_parents(keys) -> dict[tuple, tuple]:
    """Parent of every node of a product graph holding the sorted channel tuples ``keys``:
    each node is its parent times one ``A``, and a parent is a node with one channel less.
    A node reuses an existing parent when it can (the one that most terms contain);
    otherwise it gets the parent shared by the most terms, created recursively. This
    shares far more partial products than a prefix tree (cu_template: 5510 nodes of
    which 1473 have children, against 7670 and 3468)."""
    shared: dict[tuple, int] = {}
    for key in keys:
        for sub in _drop_one(key):
            shared[sub] = shared.get(sub, 0) + 1
    parent: dict[tuple, tuple] = {}

    def ensure(key: tuple) -> None:
        stack = [key]
        while stack:
            x = stack[-1]
            if x in parent or not x:
                stack.pop()
                continue
            subs = _drop_one(x)
            have = [c for c in subs if c in parent or not c]
            if have:
                parent[x] = max(have, key=lambda c: shared.get(c, 0))
                stack.pop()
            else:
                stack.append(max(subs, key=lambda c: (shared.get(c, 0), c)))

    for key in sorted(keys, key=lambda t: (len(t), t)):
        ensure(key)
    return parent


def product_tree(comb_off, comb_aoff, comb_aidx):
    """Product graph of the terms, per central species (see module docstring): every node
    is its parent's product times one ``A`` (:func:`_choose_parents`); nodes with children
    in level order, then the leaves sorted by parent. Level order keeps the nodes of one
    level independent of each other (no serial dependency chains in the forward and
    reverse passes); leaves only need the real part of their product."""
    off, parent, chan, nint = [0], [], [], []
    term_node = np.zeros(len(comb_aoff) - 1, dtype=np.int64)
    for mu in range(len(comb_off) - 1):
        keys = {s: tuple(sorted(int(a) for a in comb_aidx[comb_aoff[s] : comb_aoff[s + 1]]))
                for s in range(int(comb_off[mu]), int(comb_off[mu + 1]))}  # fmt: skip
        par = _choose_parents(set(keys.values()))
        inner = set(par.values())
        local = {(): 0}
        order = [()]
        for k in sorted({len(x) for x in inner if x}):
            level = [x for x in inner if len(x) == k]
            for x in sorted(level, key=lambda t: (local[par[t]], t)):
                local[x] = len(order)
                order.append(x)
        nint.append(len(order))
        for x in sorted(set(par) - inner, key=lambda t: (local[par[t]], t)):  # the leaves
            local[x] = len(order)
            order.append(x)
        for x in order:
            if not x:
                parent.append(0)
                chan.append(0)  # the root's channel is never read
                continue
            rest = list(par[x])
            for a in x:  # the one channel of x that its parent lacks
                if a in rest:
                    rest.remove(a)
                else:
                    break
            parent.append(local[par[x]])
            chan.append(a)
        for s, key in keys.items():
            term_node[s] = local[key]
        off.append(len(parent))
    i64, u32 = np.int64, np.uint32  # unsigned node/channel indices: see kernels.evaluate._densities
    return (
        np.array(off, dtype=i64),
        np.array(parent, dtype=u32),
        np.array(chan, dtype=u32),
        np.array(nint, dtype=i64),
        term_node,
    )


def build_tables(pot: CTildePotential) -> KernelTables:
    """Flatten ``pot`` for the kernels: splines, embeddings and product-term tables."""
    nelem = len(pot.elements)
    missing = [(i, j) for i in range(nelem) for j in range(nelem) if (i, j) not in pot.bonds]
    if missing:
        raise AcealInputError(f"potential has no bond entry for species pairs {missing}")
    bonds = [pot.bonds[(i, j)] for i in range(nelem) for j in range(nelem)]
    lmax = max(b.lmax for b in bonds)
    nradmax = max(max(b.nradmax for b in bonds), 1)
    nradbase = max(b.nradbase for b in bonds)
    ndens = pot.ndensity
    step = pot.delta_spline_bins
    if step <= 0:
        raise AcealInputError(f"deltaSplineBins must be positive, got {step}")

    tabs = [tabulate_bond(b, nradbase, nradmax, lmax, step) for b in bonds]
    nlut = np.array([t[2] for t in tabs], dtype=np.int64)
    nfunc_spline = tabs[0][0].shape[1]
    spline = np.zeros((len(bonds), nlut.max() + 1, nfunc_spline, 4))
    for p, (b, (vals, ders, n)) in enumerate(zip(bonds, tabs, strict=True)):
        spline[p, : n + 1] = hermite_coefficients(vals, ders, b.rcut / n)
    rcut = np.array([b.rcut for b in bonds])
    rscale = nlut / rcut

    e0 = np.zeros(nelem)
    e0[: len(pot.e0)] = pot.e0
    emb_type = np.zeros(nelem, dtype=np.int64)
    emb_params = np.zeros((nelem, ndens, 2))
    emb_ndens = np.zeros(nelem, dtype=np.int64)
    rho_cut = np.zeros(nelem)
    drho_cut = np.zeros(nelem)
    for mu in range(nelem):
        emb = pot.embeddings[mu]
        if emb.npoti not in EMBEDDING_CODES:
            raise AcealInputError(
                f"unknown embedding {emb.npoti!r}; known: {', '.join(EMBEDDING_CODES)}"
            )
        emb_type[mu] = EMBEDDING_CODES[emb.npoti]
        emb_ndens[mu] = emb.ndensity
        if emb.npoti != "linear":
            fs = np.asarray(emb.FS_parameters, dtype=float)
            if fs.size < 2 * emb.ndensity:
                raise AcealInputError(
                    f"embedding of species {mu}: FS_parameters needs {2 * emb.ndensity} values"
                )
            emb_params[mu, : emb.ndensity] = fs[: 2 * emb.ndensity].reshape(-1, 2)
        rho_cut[mu] = emb.rho_core_cutoff
        drho_cut[mu] = emb.drho_core_cutoff

    nlm = (lmax + 1) ** 2

    def channel(mu: int, n: int, l: int, m: int) -> int:
        return (mu * nradmax + n - 1) * nlm + l * l + l + m

    r1_off, r1_idx, r1_coef, r1_func = [0], [], [], []
    comb_off, comb_aoff, comb_aidx, comb_coef, comb_func = [0], [0], [], [], []
    rankmax, ifunc = 1, 0
    for mu0 in range(nelem):
        for f in pot.functions.get(mu0, []):
            ct = np.asarray(f.ctildes, dtype=float).reshape(len(f.ms_combs), -1)
            coef = np.zeros((ct.shape[0], ndens))
            coef[:, : ct.shape[1]] = ct
            if f.rank == 1:
                r1_idx.append(int(f.mus[0]) * nradbase + int(f.ns[0]) - 1)
                r1_coef.append(coef[0])
                r1_func.append(ifunc)
            else:
                rankmax = max(rankmax, f.rank)
                ms = np.asarray(f.ms_combs, dtype=np.int64).reshape(-1, f.rank)
                for s in range(ms.shape[0]):
                    for t in range(f.rank):
                        comb_aidx.append(
                            channel(int(f.mus[t]), int(f.ns[t]), int(f.ls[t]), int(ms[s, t]))
                        )
                    comb_aoff.append(len(comb_aidx))
                    comb_coef.append(coef[s])
                    comb_func.append(ifunc)
            ifunc += 1
        r1_off.append(len(r1_idx))
        comb_off.append(len(comb_coef))

    def arr(x, dtype, shape=(0,)):
        return np.array(x, dtype=dtype) if len(x) else np.zeros(shape, dtype=dtype)

    return KernelTables(
        nelem=nelem,
        lmax=lmax,
        nradmax=nradmax,
        nradbase=nradbase,
        ndensity=ndens,
        spline=spline,
        nlut=nlut,
        rscale=rscale,
        rcut=rcut,
        rmin=rcut / nlut,
        e0=e0,
        emb_type=emb_type,
        emb_params=emb_params,
        emb_ndens=emb_ndens,
        rho_cut=rho_cut,
        drho_cut=drho_cut,
        r1_off=np.array(r1_off, dtype=np.int64),
        r1_idx=arr(r1_idx, np.int64),
        r1_coef=arr(r1_coef, np.float64, (0, ndens)),
        r1_func=arr(r1_func, np.int64),
        comb_off=np.array(comb_off, dtype=np.int64),
        comb_aoff=np.array(comb_aoff, dtype=np.int64),
        comb_aidx=arr(comb_aidx, np.int64),
        comb_coef=arr(comb_coef, np.float64, (0, ndens)),
        comb_func=arr(comb_func, np.int64),
        rankmax=rankmax,
        nfunc=ifunc,
    )
