"""Write a linear aceal model as a pacemaker B-basis potential (``.yaml``).

LAMMPS ``pair_style pace`` reads the folded C-tilde ``.yace`` (:mod:`aceal.formats.yace`),
but ``pair_style pace/extrapolation`` needs the *B-basis* file that pacemaker writes
(``output_potential.yaml``: ``global`` + ``species`` blocks with ``nbody`` functions), because
it evaluates every basis function ``B`` separately to grade atoms against an active set
(``.asi``, :mod:`aceal.formats.asi`).

aceal's and pacemaker's B functions span the same space but are different bases of it:

* rank 1 (``B = sum_j g_{n-1}(r_ij)``): identical;
* rank >= 2, one ``(mu0, multiset)`` at a time: aceal uses an orthonormal,
  permutation-symmetrised basis of the invariants (:mod:`aceal.basis.coupling`); a
  pacemaker function is one coupling tree (intermediates ``lint``) of generalised
  Clebsch-Gordan coefficients, on pacemaker's own tree (pairs first:
  ``((l1 l2)L1 (l3 l4)L2)...``).  For every multiset we pick as many pacemaker trees as
  aceal has invariants (greedily, in increasing ``lint``), such that they span the same
  space, and compute the exact linear map ``B_aceal = M B_pacemaker``.

With the block-diagonal ``T`` (``T[s, j] = M[j, s]``) of one element,
``b_aceal = b_pacemaker @ T``: the energy coefficients written are ``T @ c`` and an
active-set inverse ``A^{-1}`` of aceal becomes pacemaker's ``T @ A^{-1}`` (same γ).
pacemaker numbers an element's functions after sorting them (rank, species, ns, ls,
m-combinations); :func:`pace_bbasis_map` reproduces that order.

Limitations: the B-basis format has no reference energies ``E0`` (pacemaker potentials
predict the energy relative to isolated atoms), so LAMMPS energies with this file are
aceal's minus ``sum_i E0(Z_i)``; forces and stress are the same. A committee is not
written (only the mean coefficients). PACE ``.yace`` potentials loaded into aceal have no
linear basis and cannot be written in this form.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from aceal.basis.angular import clebsch_gordan
from aceal.basis.coupling import canonical_groups, invariant_couplings, m_tuples
from aceal.basis.spec import multiset_arrays
from aceal.errors import AcealInputError

__all__ = ["PaceBBasisMap", "pace_bbasis_map", "read_pace_bbasis", "write_pace_bbasis"]

_FIT_TOL = 1e-9  # relative residual of B_aceal = M B_pacemaker that we accept


# ---------------------------------------------------------------------- coupling trees
@cache
def pace_coupling_tree(rank: int) -> tuple[tuple[int, int, int], ...]:
    """pacemaker's coupling tree of ``rank`` factors as ``(child1, child2, parent)`` nodes.

    Nodes ``0..rank-1`` are the factors, ``rank..2 rank-3`` the intermediates ``lint``
    (in this order), ``-1`` the root (coupled to ``L = 0``). Factors are paired first,
    ``(0 1)(2 3)...``, then the intermediates pairwise, an odd last factor at the end.
    """
    if rank < 2:
        return ()
    leaves = list(range(rank))
    inter = list(range(rank, 2 * rank - 2))
    nodes: list[tuple[int, int, int]] = []
    pending: list[int] = []
    parent = 0
    for _ in range(rank // 2):
        a, b = leaves.pop(0), leaves.pop(0)
        parent = inter.pop(0) if inter else -1
        nodes.append((a, b, parent))
        pending.append(parent)
    while len(pending) > 1 and parent != -1:
        a, b = pending.pop(0), pending.pop(0)
        parent = inter.pop(0) if inter else -1
        nodes.append((a, b, parent))
        pending.append(parent)
    if parent != -1:
        nodes.append((pending.pop(0), leaves.pop(0), -1))
    if len(nodes) != rank - 1:
        raise AssertionError(f"coupling tree of rank {rank} has {len(nodes)} nodes")
    return tuple(nodes)


@cache
def _lint_candidates(ls: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """All intermediate values ``lint`` (length ``rank - 2``) admissible for ``ls``."""
    rank = len(ls)
    if rank < 3:
        return ((),)
    tree = pace_coupling_tree(rank)
    n_int = rank - 2
    out = []
    # recursive assignment in node order (children are assigned before their parent)
    values = dict(enumerate(ls))

    def rec(k: int) -> None:
        if k == len(tree):
            out.append(tuple(values[rank + i] for i in range(n_int)))
            return
        a, b, p = tree[k]
        la, lb = values[a], values[b]
        if p == -1:
            if la == lb:
                rec(k + 1)
            return
        for big_l in range(abs(la - lb), la + lb + 1):
            values[p] = big_l
            rec(k + 1)
        values.pop(p, None)

    rec(0)
    return tuple(sorted(set(out)))


def _gen_cg(ls: tuple[int, ...], lint: tuple[int, ...], ms: np.ndarray) -> np.ndarray:
    """Generalised Clebsch-Gordan coefficients of pacemaker's tree on m-tuples ``ms``."""
    rank = len(ls)
    tree = pace_coupling_tree(rank)
    big = {**dict(enumerate(ls)), **{rank + i: v for i, v in enumerate(lint)}, -1: 0}
    out = np.empty(ms.shape[0])
    for row, m in enumerate(ms):
        mm = {t: int(m[t]) for t in range(rank)}
        c = 1.0
        for a, b, p in tree:
            mm[p] = mm[a] + mm[b]
            if abs(mm[p]) > big[p]:
                c = 0.0
                break
            c *= clebsch_gordan(big[a], mm[a], big[b], mm[b], big[p], mm[p])
            if c == 0.0:
                break
        out[row] = c
    return out


def _ms_count_bounds(ls: tuple[int, ...], lint: tuple[int, ...]) -> tuple[int, int]:
    """Bounds ``(lo, hi)`` of pacemaker's ``num_ms_combs`` for one function (its sort key
    after species, ``ns`` and ``ls``).

    pacemaker keeps the ``sum m = 0`` tuples whose first non-zero ``m`` is positive (or all
    zero), whose intermediate projections are admissible and whose coefficient, computed
    in floating point, is not exactly zero. Coefficients that vanish exactly may come out
    as ~1e-17 there, so the count is only known to lie between the number of exactly
    non-zero coefficients (``lo``) and the number of admissible tuples (``hi``).
    """
    rank = len(ls)
    tree = pace_coupling_tree(rank)
    big = {**dict(enumerate(ls)), **{rank + i: v for i, v in enumerate(lint)}, -1: 0}
    lo = hi = 0
    for m in itertools.product(*[range(-ll, ll + 1) for ll in ls]):
        if sum(m) != 0 or next((x for x in m if x != 0), 0) < 0:
            continue
        mm = dict(enumerate(m))
        ok = True
        for a, b, p in tree:
            mm[p] = mm[a] + mm[b]
            if abs(mm[p]) > big[p]:
                ok = False
                break
        if not ok:
            continue
        hi += 1
        if _gen_cg(ls, lint, np.array([m]))[0] != 0.0:
            lo += 1
    return lo, hi


# ---------------------------------------------------------------------- the map
@dataclass
class PaceFunction:
    """One pacemaker B function (an ``nbody`` entry) of central element ``mu0``."""

    elements: tuple[str, ...]  # central element first, then one per factor
    ns: tuple[int, ...]
    ls: tuple[int, ...]
    lint: tuple[int, ...]
    key: tuple = field(repr=False)  # pacemaker's sort key


@dataclass
class PaceBBasisMap:
    """aceal basis ↔ pacemaker B-basis, per element (pacemaker's sorted order).

    ``functions[el]`` are the pacemaker functions of central element ``el`` in the order of
    pacemaker's projections (= rows of its ``.asi`` matrix), ``columns[el]`` the global
    aceal indices ``k`` of that element's functions (increasing), and ``transform[el]``
    the square matrix ``T`` with ``b_aceal[columns] = b_pacemaker @ T``.
    """

    elements: list[str]  # pacemaker order (sorted symbols)
    functions: dict[str, list[PaceFunction]]
    columns: dict[str, np.ndarray]
    transform: dict[str, np.ndarray]

    def coefficients(self, coefficients: np.ndarray) -> dict[str, np.ndarray]:
        """pacemaker ``c`` per element for aceal coefficients (``E = sum_k c_k B_k``)."""
        coef = np.asarray(coefficients, dtype=float)
        return {el: self.transform[el] @ coef[self.columns[el]] for el in self.elements}

    def to_pace_inverse(self, element: str, inverse: np.ndarray) -> np.ndarray:
        """pacemaker's ``A^{-1}`` (rows = its functions) from aceal's (rows = ``columns``)."""
        return self.transform[element] @ np.asarray(inverse, dtype=float)

    def from_pace_inverse(self, element: str, inverse: np.ndarray) -> np.ndarray:
        """aceal's ``A^{-1}`` from pacemaker's (inverse of :meth:`to_pace_inverse`)."""
        return np.linalg.solve(self.transform[element], np.asarray(inverse, dtype=float))


def _groups(basis):
    """Runs ``(k0, k1)`` of consecutive functions with the same species and multiset."""
    k, nf = 0, len(basis)
    while k < nf:
        k1 = k + 1
        while (
            k1 < nf
            and basis.species[k1] == basis.species[k]
            and basis.multisets[k1] == basis.multisets[k]
        ):
            k1 += 1
        yield k, k1
        k = k1


def _encode(ms: np.ndarray, ls: tuple[int, ...]) -> np.ndarray:
    code = np.zeros(ms.shape[0], dtype=np.int64)
    for t, ll in enumerate(ls):
        code = code * (2 * ll + 1) + (ms[:, t] + ll)
    return code


def _symmetrise(vecs: np.ndarray, ms: np.ndarray, ls: tuple[int, ...], groups) -> np.ndarray:
    perms = []
    blocks: dict[int, list[int]] = {}
    for pos, g in enumerate(groups):
        blocks.setdefault(g, []).append(pos)
    per_block = [list(itertools.permutations(pos)) for pos in blocks.values()]
    for choice in itertools.product(*per_block):
        perm = list(range(len(groups)))
        for positions, image in zip(blocks.values(), choice, strict=True):
            for p, q in zip(positions, image, strict=True):
                perm[p] = q
        perms.append(perm)
    if len(perms) == 1:
        return vecs
    codes = _encode(ms, ls)
    order = np.argsort(codes)
    out = np.zeros_like(vecs)
    for perm in perms:
        idx = order[np.searchsorted(codes, _encode(ms[:, perm], ls), sorter=order)]
        out += vecs[:, idx]
    return out / len(perms)


def _written_orders(mset, pm_index: dict[int, int]) -> list[tuple[int, ...]]:
    """Factor orders pacemaker may be given for a multiset: sorted by pacemaker's species
    index first, then every other distinct arrangement (lexicographic)."""
    rank = len(mset)
    label = [(pm_index[f[0]], f[1], f[2]) for f in mset]
    first = tuple(sorted(range(rank), key=lambda t: label[t]))
    seen = {tuple(label[t] for t in first)}
    out = [first]
    for perm in itertools.permutations(range(rank)):
        arr = tuple(label[t] for t in perm)
        if arr not in seen:
            seen.add(arr)
            out.append(perm)
    return out


def _group_map(basis, k0: int, k1: int, pm_index: dict[int, int]):
    """pacemaker functions and ``M`` (aceal rows × pacemaker functions) of one group.

    Candidates are (factor order, ``lint``) pairs; a candidate is taken if it adds a new
    direction and pacemaker is certain to sort it apart from those already taken (a
    different written ``(species, ns, ls)``, or a ``num_ms_combs`` range that does not
    overlap).
    """
    mset = basis.multisets[k0]
    mu0 = int(basis.species[k0])
    rank = len(mset)
    names = basis.elements

    def describe(order):
        w_mus = tuple(pm_index[mset[t][0]] for t in order)
        w_ns = tuple(int(mset[t][1]) for t in order)
        w_ls = tuple(int(mset[t][2]) for t in order)
        elements = (names[mu0], *(names[mset[t][0]] for t in order))
        return (rank, pm_index[mu0], w_mus, w_ns, w_ls), elements, w_ns, w_ls

    if rank == 1:
        head, elements, w_ns, w_ls = describe((0,))
        return [PaceFunction(elements, w_ns, w_ls, (), (*head, 1))], np.ones((1, 1))
    _, _, ls = multiset_arrays(mset)
    groups = canonical_groups(mset)
    coup = invariant_couplings(ls, groups)
    q = coup.coeffs_full[: k1 - k0]  # aceal rows over ms_full (aceal factor order)
    if q.shape[0] != k1 - k0:
        raise AssertionError("aceal basis and its couplings disagree")
    ms = m_tuples(tuple(ls))
    funcs: list[PaceFunction] = []
    vecs: list[np.ndarray] = []
    taken: dict[tuple, list[tuple[int, int]]] = {}
    for order in _written_orders(mset, pm_index):
        head, elements, w_ns, w_ls = describe(order)
        ms_w = ms[:, list(order)]  # the same m-tuples in the written factor order
        for lint in _lint_candidates(w_ls):
            v = _symmetrise(_gen_cg(w_ls, lint, ms_w)[None, :], ms, tuple(ls), groups)[0]
            if np.abs(v).max() < 1e-12:
                continue
            trial = np.array([*vecs, v])
            if np.linalg.matrix_rank(trial, tol=1e-9 * np.abs(trial).max()) < len(trial):
                continue
            lo, hi = _ms_count_bounds(w_ls, lint) if rank > 3 else (0, 0)
            if any(not (hi < a or lo > b) for a, b in taken.get(head, [])):
                continue  # pacemaker's order against a taken function would be uncertain
            taken.setdefault(head, []).append((lo, hi))
            funcs.append(PaceFunction(elements, w_ns, w_ls, lint, (*head, lo)))
            vecs.append(v)
            if len(vecs) == q.shape[0]:
                break
        if len(vecs) == q.shape[0]:
            break
    if len(vecs) != q.shape[0]:
        raise AcealInputError(
            f"cannot express the invariants of {basis.labels()[k0]} by pacemaker functions "
            "in a definite LAMMPS order"
        )
    p = np.array(vecs)
    m, *_ = np.linalg.lstsq(p.T, q.T, rcond=None)
    m = m.T  # q = m @ p
    resid = np.abs(m @ p - q).max()
    if resid > _FIT_TOL:
        label = basis.labels()[k0]
        raise AssertionError(f"pacemaker coupling fit residual {resid:.2e} for {label}")
    return funcs, m


def pace_bbasis_map(basis) -> PaceBBasisMap:
    """The aceal ↔ pacemaker B-basis correspondence of an :class:`~aceal.basis.ACEBasis`."""
    cached = getattr(basis, "_pace_bbasis_map", None)
    if cached is not None:
        return cached
    pm_elements = sorted(basis.elements)
    pm_index = {mu: pm_elements.index(el) for mu, el in enumerate(basis.elements)}
    entries: dict[str, list] = {el: [] for el in pm_elements}
    for k0, k1 in _groups(basis):
        funcs, m = _group_map(basis, k0, k1, pm_index)
        el = basis.elements[int(basis.species[k0])]
        for s, f in enumerate(funcs):
            entries[el].append((f, {k0 + j: m[j, s] for j in range(k1 - k0)}))
    functions, columns, transform = {}, {}, {}
    for el in pm_elements:
        mu = basis.elements.index(el)
        cols = np.flatnonzero(basis.species == mu)
        pos = {int(k): i for i, k in enumerate(cols)}
        rows = sorted(entries[el], key=lambda e: e[0].key)
        keys = [f.key for f, _ in rows]
        if len(set(keys)) != len(keys):
            raise AcealInputError(
                f"{el}: two pacemaker functions sort equal; their order in LAMMPS would be "
                "ambiguous (please report this basis)"
            )
        t = np.zeros((len(rows), len(cols)))
        for s, (_, weights) in enumerate(rows):
            for k, w in weights.items():
                t[s, pos[k]] = w
        if t.shape[0] != t.shape[1]:
            raise AssertionError("pacemaker and aceal bases differ in size")
        functions[el] = [f for f, _ in rows]
        columns[el] = cols
        transform[el] = t
    out = PaceBBasisMap(pm_elements, functions, columns, transform)
    try:
        basis._pace_bbasis_map = out
    except AttributeError:
        pass
    return out


# ---------------------------------------------------------------------- writer
def _num(x: float) -> str:
    return repr(float(x))


def _flow(values) -> str:
    arr = np.asarray(values)
    if arr.ndim == 0:
        return _num(arr) if arr.dtype.kind == "f" else str(int(arr))
    return "[" + ", ".join(_flow(v) for v in arr) + "]"


def write_pace_bbasis(model, path: str | Path) -> None:
    """Write a linear :class:`~aceal.model.ACEModel` as a pacemaker B-basis ``.yaml``.

    The file is what LAMMPS ``pair_style pace/extrapolation`` (and pacemaker/pyace) read:
    ``pair_coeff * * model.yaml model.asi Cu Ni``. See the module docstring for what
    differs (no ``E0``; energies are relative to it).
    """
    if getattr(model, "coefficients", None) is None or getattr(model, "basis", None) is None:
        raise AcealInputError(
            "only a linear aceal model (basis + coefficients) can be written as a pacemaker "
            "B-basis; a PACE .yace potential has no linear basis"
        )
    basis = model.basis
    bmap = pace_bbasis_map(basis)
    coefs = bmap.coefficients(model.coefficients)
    pot = model.ctilde  # bonds with the model's core repulsion
    names = basis.elements
    index = {el: mu for mu, el in enumerate(names)}
    lines = [
        "metadata:",
        '  writer: "aceal"',
        '  E0: "'
        + ", ".join(f"{el}: {float(e)!r}" for el, e in zip(names, model.e0, strict=True))
        + '"  # not applied by pacemaker/LAMMPS (B-basis files have no E0)',
        "global:",
        f"  DeltaSplineBins: {_num(basis.delta_spline_bins)}",
        "species:",
    ]

    def bond_lines(a: str, b: str) -> list[str]:
        bond = pot.bonds[(index[a], index[b])]
        return [
            f"    nradmaxi: {bond.nradmax}",
            f"    lmaxi: {bond.lmax}",
            f"    rcutij: {_num(bond.rcut)}",
            f"    dcutij: {_num(bond.dcut)}",
            "    NameOfCutoffFunctionij: cos",
            f"    r_in: {_num(bond.rcut_in)}",
            f"    delta_in: {_num(bond.dcut_in)}",
            f"    inner_cutoff_type: {bond.inner_cutoff_type}",
            f"    nradbaseij: {bond.nradbase}",
            f"    radbase: {bond.radbasename}",
            f"    radparameters: {_flow(np.asarray(bond.radparameters, dtype=float))}",
            f"    radcoefficients: {_flow(np.asarray(bond.crad, dtype=float))}",
            f"    core-repulsion: [{_num(bond.prehc)}, {_num(bond.lambdahc)}]",
        ]

    for el in bmap.elements:
        blocks: dict[tuple[str, ...], list[str]] = {}
        for f, c in zip(bmap.functions[el], coefs[el], strict=True):
            others = tuple(sorted(set(f.elements[1:]) - {el}))
            entry = (
                f"      - {{type: {' '.join(f.elements)}, nr: {list(f.ns)}, nl: {list(f.ls)}, "
                + (f"lint: {list(f.lint)}, " if len(f.ls) > 2 else "")
                + f"c: [{_num(c)}]}}"
            )
            blocks.setdefault(others, []).append(entry)
        emb = pot.embeddings[index[el]]
        lines += [
            f"  - speciesblock: {el}",
            "    ndensityi: 1",
            "    npoti: FinnisSinclairShiftedScaled",
            "    parameters: [1.0, 1.0]",
            f"    rho_core_cut: {_num(emb.rho_core_cutoff)}",
            f"    drho_core_cut: {_num(emb.drho_core_cutoff)}",
            *bond_lines(el, el),
            "    nbody:" + ("" if blocks.get(()) else " []"),
            *blocks.pop((), []),
        ]
        for other in bmap.elements:
            if other == el:
                continue
            body = blocks.pop((other,), [])
            lines += [
                f"  - speciesblock: {el} {other}",
                *bond_lines(el, other),
                "    nbody:" + ("" if body else " []"),
                *body,
            ]
        for others, body in sorted(blocks.items()):
            lines += [f"  - speciesblock: {el} {' '.join(others)}", "    nbody:", *body]
    Path(path).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------- reader
def read_pace_bbasis(path: str | Path, ctilde_cut: float = 0.0):
    """Read a pacemaker B-basis potential (``.yaml``) as a C-tilde potential aceal evaluates.

    Works for the files :func:`write_pace_bbasis` writes and for pacemaker's own
    ``output_potential.yaml`` (species blocks with embedding, radial basis, core
    repulsion and ``nbody`` functions; ``skip``-ped functions are left out). The
    generalised Clebsch-Gordan coefficients are those of pacemaker's coupling trees, on
    the full ``m`` space. ``E0`` is 0 (the format has none).

    Returns
    -------
    aceal.basis.ctilde.CTildePotential
        Use ``ACEModel(ctilde=read_pace_bbasis(path))``.
    """
    import yaml

    from aceal.basis.ctilde import Bond, CTildeFunction, CTildePotential, Embedding

    path = Path(path)
    try:
        doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise AcealInputError(f"{path}: not valid YAML ({err.__class__.__name__})") from err
    if not isinstance(doc, dict) or "species" not in doc or "global" not in doc:
        raise AcealInputError(f"{path}: not a pacemaker B-basis file (no global/species)")
    blocks = doc["species"]

    def names(block) -> list[str]:
        return str(block["speciesblock"]).split()

    elements = sorted({el for b in blocks for el in names(b)})
    index = {el: i for i, el in enumerate(elements)}
    radial_keys = ("nradmaxi", "lmaxi", "nradbaseij", "radbase", "radparameters",
                   "radcoefficients", "rcutij", "dcutij")  # fmt: skip
    bonds: dict[tuple[int, int], Bond] = {}
    embeddings: dict[int, Embedding] = {}
    for b in blocks:
        els = names(b)
        if len(set(els)) > 2:
            continue
        i = index[els[0]]
        j = index[els[1]] if len(els) > 1 else i
        if len(set(els)) == 1:
            fs = [float(x) for x in b["parameters"]]
            embeddings[i] = Embedding(
                ndensity=int(b["ndensityi"]), npoti=str(b["npoti"]), FS_parameters=fs,
                rho_core_cutoff=float(b.get("rho_core_cut", 100000.0)),
                drho_core_cutoff=float(b.get("drho_core_cut", 250.0)),
            )  # fmt: skip
        if all(k in b for k in radial_keys):
            core = [float(x) for x in b.get("core-repulsion", [0.0, 0.0])]
            crad = np.asarray(b["radcoefficients"], dtype=float)
            nradmax, lmax, nradbase = int(b["nradmaxi"]), int(b["lmaxi"]), int(b["nradbaseij"])
            crad = (
                crad.reshape(nradmax, lmax + 1, nradbase)
                if nradmax
                else np.zeros((0, lmax + 1, nradbase))
            )
            bonds[(i, j)] = Bond(
                radbasename=str(b["radbase"]),
                radparameters=[float(x) for x in b["radparameters"]],
                nradbase=nradbase, nradmax=nradmax, lmax=lmax, crad=crad,
                rcut=float(b["rcutij"]), dcut=float(b["dcutij"]),
                rcut_in=float(b.get("r_in", 0.0)), dcut_in=float(b.get("delta_in", 0.0)),
                inner_cutoff_type=str(b.get("inner_cutoff_type", "density")),
                prehc=core[0], lambdahc=core[1],
            )  # fmt: skip
    for (i, j), bond in list(bonds.items()):
        bonds.setdefault((j, i), bond)
    missing = [(a, c) for a in elements for c in elements if (index[a], index[c]) not in bonds]
    if missing:
        raise AcealInputError(f"{path}: no radial basis for the pairs {missing}")
    functions: dict[int, list] = {i: [] for i in range(len(elements))}
    for b in blocks:
        for f in b.get("nbody") or []:
            if f.get("skip"):
                continue
            types = str(f["type"]).split()
            rank = len(types) - 1
            mu0 = index[types[0]]
            mus = np.array([index[t] for t in types[1:]], dtype=np.int64)
            ns = np.array(f["nr"], dtype=np.int64).reshape(-1)
            ls = np.array(f["nl"], dtype=np.int64).reshape(-1)
            c = np.atleast_1d(np.asarray(f["c"], dtype=float))
            if rank == 1:
                ms = np.zeros((1, 1), dtype=np.int64)
                ct = c[None, :]
            else:
                lint = tuple(int(x) for x in np.atleast_1d(f.get("lint", []))) if rank > 2 else ()
                if rank == 3 and not lint:
                    lint = (int(ls[2]),)
                if rank == 4 and len(lint) == 1:
                    lint = (lint[0], lint[0])
                all_ms = m_tuples(tuple(int(x) for x in ls))
                cg = _gen_cg(tuple(int(x) for x in ls), lint, all_ms)
                keep = np.abs(cg) > ctilde_cut
                ms = np.ascontiguousarray(all_ms[keep])
                ct = cg[keep][:, None] * c[None, :]
            functions[mu0].append(
                CTildeFunction(mu0=mu0, mus=mus, ns=ns, ls=ls, ms_combs=ms, ctildes=ct)
            )
    return CTildePotential(
        elements=elements,
        e0=np.zeros(len(elements)),
        bonds=bonds,
        embeddings=embeddings,
        functions=functions,
        delta_spline_bins=float(doc["global"].get("DeltaSplineBins", 0.001)),
    )
