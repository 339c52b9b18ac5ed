"""Read and write PACE ``.yace`` potentials (pacemaker, LAMMPS ``pair_style pace``).

A ``.yace`` file is YAML holding a C-tilde basis: ``elements``, ``E0``,
``deltaSplineBins``, ``embeddings`` (per species), ``bonds`` (per ordered species pair,
keyed by ``[mu_i, mu_j]``) and ``functions`` (per central species). See
:mod:`aceal.basis.ctilde` for the meaning of each field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from aceal.basis.ctilde import (
    EMBEDDINGS,
    INNER_CUTOFF_TYPES,
    RADIAL_BASES,
    Bond,
    CTildeFunction,
    CTildePotential,
    Embedding,
)
from aceal.errors import AcealInputError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _YaceLoader(_Loader):
    """Safe loader whose sequence keys (``[0, 1]:``) become tuples."""


def _construct_mapping(loader, node, deep=False):
    pairs = []
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.SequenceNode):
            key = tuple(loader.construct_sequence(key_node, deep=True))
        else:
            key = loader.construct_object(key_node, deep=deep)
        pairs.append((key, loader.construct_object(value_node, deep=deep)))
    return dict(pairs)


_YaceLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _get(mapping: dict, key: str, where: str):
    if key not in mapping:
        raise AcealInputError(f"{where}: missing key {key!r}")
    return mapping[key]


def read_yace(path: str | Path) -> CTildePotential:
    """Parse a ``.yace`` file into a :class:`CTildePotential`."""
    path = Path(path)
    try:
        with open(path) as fh:
            doc = yaml.load(fh, Loader=_YaceLoader)
    except yaml.YAMLError as err:
        raise AcealInputError(f"{path}: not valid YAML ({err.__class__.__name__})") from err
    if not isinstance(doc, dict):
        raise AcealInputError(f"{path}: not a .yace potential (top level is not a mapping)")
    where = str(path)
    # YAML 1.1 reads the bare symbol No (nobelium) as a boolean
    elements = ["No" if e is False else str(e) for e in _get(doc, "elements", where)]
    nelem = len(elements)
    e0 = np.asarray(doc.get("E0", [0.0] * nelem), dtype=float)
    if e0.size != nelem:
        raise AcealInputError(f"{where}: E0 has {e0.size} values for {nelem} elements")

    embeddings = {}
    for mu, emb in _get(doc, "embeddings", where).items():
        npoti = str(_get(emb, "npoti", f"{where}: embeddings[{mu}]"))
        if npoti not in EMBEDDINGS:
            raise AcealInputError(f"{where}: embeddings[{mu}].npoti {npoti!r} is not supported")
        embeddings[int(mu)] = Embedding(
            ndensity=int(_get(emb, "ndensity", f"{where}: embeddings[{mu}]")),
            npoti=npoti,
            FS_parameters=[float(x) for x in emb.get("FS_parameters", [1.0, 1.0])],
            rho_core_cutoff=float(emb.get("rho_core_cutoff", 100000.0)),
            drho_core_cutoff=float(emb.get("drho_core_cutoff", 250.0)),
        )

    bonds = {}
    for key, b in _get(doc, "bonds", where).items():
        pair = tuple(int(k) for k in key)
        bw = f"{where}: bonds[{list(pair)}]"
        name = str(_get(b, "radbasename", bw))
        if name not in RADIAL_BASES:
            raise AcealInputError(f"{bw}.radbasename {name!r} is not supported")
        inner = str(b.get("inner_cutoff_type", "density"))
        if inner not in INNER_CUTOFF_TYPES:
            raise AcealInputError(f"{bw}.inner_cutoff_type {inner!r} is not supported")
        nradmax = int(_get(b, "nradmax", bw))
        lmax = int(_get(b, "lmax", bw))
        nradbase = int(_get(b, "nradbasemax", bw))
        crad = np.asarray(_get(b, "radcoefficients", bw), dtype=float)
        if nradmax == 0:
            crad = np.zeros((0, lmax + 1, nradbase))
        if crad.shape != (nradmax, lmax + 1, nradbase):
            raise AcealInputError(
                f"{bw}.radcoefficients has shape {crad.shape}, "
                f"expected {(nradmax, lmax + 1, nradbase)}"
            )
        bonds[pair] = Bond(
            radbasename=name,
            radparameters=[float(x) for x in b.get("radparameters", [])],
            nradbase=nradbase,
            nradmax=nradmax,
            lmax=lmax,
            crad=crad,
            rcut=float(_get(b, "rcut", bw)),
            dcut=float(b.get("dcut", 0.01)),
            rcut_in=float(b.get("rcut_in", 0.0)),
            dcut_in=float(b.get("dcut_in", 0.0)),
            inner_cutoff_type=inner,
            prehc=float(b.get("prehc", 0.0)),
            lambdahc=float(b.get("lambdahc", 0.0)),
        )

    functions: dict[int, list[CTildeFunction]] = {}
    for mu, funcs in _get(doc, "functions", where).items():
        out = []
        for k, f in enumerate(funcs):
            fw = f"{where}: functions[{mu}][{k}]"
            rank = int(_get(f, "rank", fw))
            ndens = int(_get(f, "ndensity", fw))
            nms = int(_get(f, "num_ms_combs", fw))
            ms = np.asarray(_get(f, "ms_combs", fw), dtype=np.int64)
            ct = np.asarray(_get(f, "ctildes", fw), dtype=float)
            if ms.size != nms * rank or ct.size != nms * ndens:
                raise AcealInputError(f"{fw}: ms_combs/ctildes sizes do not match num_ms_combs")
            out.append(
                CTildeFunction(
                    mu0=int(_get(f, "mu0", fw)),
                    mus=np.asarray(_get(f, "mus", fw), dtype=np.int64),
                    ns=np.asarray(_get(f, "ns", fw), dtype=np.int64),
                    ls=np.asarray(_get(f, "ls", fw), dtype=np.int64),
                    ms_combs=ms.reshape(nms, rank),
                    ctildes=ct.reshape(nms, ndens),
                )
            )
        functions[int(mu)] = out
    return CTildePotential(
        elements=elements,
        e0=e0,
        bonds=bonds,
        embeddings=embeddings,
        functions=functions,
        delta_spline_bins=float(doc.get("deltaSplineBins", 0.001)),
    )


def _flow(x):
    return np.asarray(x).tolist()


def write_yace(pot: CTildePotential, path: str | Path) -> None:
    """Write ``pot`` as a ``.yace`` file readable by LAMMPS ``pair_style pace``.

    A ``linear`` embedding is written as ``FinnisSinclairShiftedScaled`` with
    ``FS_parameters = [1, 1]`` (the identity) and only the first density.
    """
    lines = [
        "elements: [" + ", ".join(f'"{e}"' for e in pot.elements) + "]",
        f"E0: {_flow(pot.e0)}",
        f"deltaSplineBins: {pot.delta_spline_bins!r}",
        "embeddings:",
    ]
    for mu in sorted(pot.embeddings):
        e = pot.embeddings[mu]
        if e.npoti == "linear":
            nd, npoti, fs = 1, "FinnisSinclairShiftedScaled", [1.0, 1.0]
        else:
            nd, npoti, fs = e.ndensity, e.npoti, list(e.FS_parameters)
        lines.append(
            f"  {mu}: {{ndensity: {nd}, FS_parameters: {fs}, npoti: {npoti}, "
            f"rho_core_cutoff: {e.rho_core_cutoff!r}, drho_core_cutoff: {e.drho_core_cutoff!r}}}"
        )
    lines.append("bonds:")
    for (i, j), b in sorted(pot.bonds.items()):
        lines.append(
            f"  [{i}, {j}]: {{nradmax: {b.nradmax}, lmax: {b.lmax}, nradbasemax: {b.nradbase}, "
            f"radbasename: {b.radbasename}, radparameters: {list(b.radparameters)}, "
            f"radcoefficients: {_flow(b.crad)}, prehc: {b.prehc!r}, lambdahc: {b.lambdahc!r}, "
            f"rcut: {b.rcut!r}, dcut: {b.dcut!r}, rcut_in: {b.rcut_in!r}, "
            f"dcut_in: {b.dcut_in!r}, inner_cutoff_type: {b.inner_cutoff_type}}}"
        )
    lines.append("functions:")
    for mu in sorted(pot.functions):
        lines.append(f"  {mu}:")
        nd = 1 if pot.embeddings[mu].npoti == "linear" else pot.embeddings[mu].ndensity
        for f in pot.functions[mu]:
            ms = np.asarray(f.ms_combs).reshape(-1, f.rank)
            ct = np.asarray(f.ctildes, dtype=float).reshape(ms.shape[0], -1)[:, :nd]
            lines.append(
                f"    - {{mu0: {f.mu0}, rank: {f.rank}, ndensity: {nd}, "
                f"num_ms_combs: {ms.shape[0]}, mus: {_flow(f.mus)}, ns: {_flow(f.ns)}, "
                f"ls: {_flow(f.ls)}, ms_combs: {_flow(ms.ravel())}, "
                f"ctildes: {[float(x) for x in ct.ravel()]}}}"
            )
    Path(path).write_text("\n".join(lines) + "\n")
