"""The ASE face of aceal: :class:`ACECalculator`.

>>> from aceal import ACECalculator
>>> atoms.calc = ACECalculator("model.yaml")      # or a PACE .yace file
>>> atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Units: energy eV, forces eV/Å, stress eV/Å³ (ASE sign and Voigt order
xx yy zz yz xz xy). With a committee of K members in the model, ``calc.results`` also
holds ``energy_std`` (eV), ``energies_std`` (eV per atom), ``energy_committee`` (eV),
``forces_committee`` (K, N, 3; eV/Å: member k's forces) and ``forces_std`` (N; eV/Å): per
atom i the magnitude of the committee spread of the force,
``sqrt( sum_k |F_ik - mean_k F_ik|^2 / (K - 1) )`` (0 for K = 1), where ``F_ik`` is the
force of member k (the model with coefficients ``committee[k]``, same ``e0`` and core
repulsion). The members' forces come from the same kernel pass as the mean model's; the
members' energies cost almost nothing (extra densities of the same products), their
forces cost one adjoint each. With ``committee_forces=False`` every call gives the energy
spreads, and ``forces_std``/``forces_committee`` are computed only when asked for, e.g.
every N MD steps: ``calc.get_property("forces_std", atoms)``.
With an active set, the extrapolation grade is computed only when asked for, e.g. every
N MD steps: ``calc.get_property("gamma", atoms)`` (per atom, dimensionless).
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from aceal.errors import AcealInputError
from aceal.evaluation import evaluate_tables, species_indices
from aceal.kernels.neighbours import NeighbourList
from aceal.model import ACEModel


class ACECalculator(Calculator):
    """ASE calculator for aceal and PACE ``.yace`` models.

    Parameters
    ----------
    model
        An :class:`~aceal.model.ACEModel` or a path to a model file (aceal YAML or ``.yace``).
    skin
        Verlet skin (Å) of the reused neighbour list; the list is rebuilt only when an atom
        moved more than ``skin / 2`` or the cell changed.
    num_threads
        numba threads for this calculator (default: numba's setting, i.e. all cores or
        ``NUMBA_NUM_THREADS``).
    active_set
        An :class:`~aceal.grade.ExtrapolationGrader` or the path of its
        ``.asi.npz`` file. By default ``<model>.asi.npz`` next to a model file is used if it
        exists. Enables the ``gamma`` property.
    committee_forces
        With a committee in the model: compute the members' forces (``forces_std``,
        ``forces_committee``) in every call (default), or, if False, only when one of them
        is requested; the energy spreads come with every call either way.
    """

    committee_properties = ("energy_std", "energies_std", "energy_committee", "forces_std",
                            "forces_committee")  # fmt: skip
    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "gamma",
                              *committee_properties]  # fmt: skip

    def __init__(
        self,
        model: ACEModel | str | Path,
        *,
        skin: float = 0.3,
        num_threads: int | None = None,
        active_set=None,
        committee_forces: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model if isinstance(model, ACEModel) else ACEModel.load(model)
        if active_set is None and not isinstance(model, ACEModel):
            sidecar = Path(model).with_suffix(".asi.npz")
            active_set = sidecar if sidecar.is_file() else None
        if active_set is not None and not hasattr(active_set, "inverses"):
            from aceal.grade import ExtrapolationGrader

            active_set = ExtrapolationGrader.load(self.model.basis, active_set)
        self.grader = active_set
        self.tables = self.model.tables
        self.elements = self.model.elements
        self.num_threads = num_threads
        self.committee_forces = bool(committee_forces)
        self._nl = NeighbourList(self.tables.cutoff, skin=skin)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if "stress" in properties and not pbc.all():
            raise PropertyNotImplementedError("stress needs a fully periodic cell")
        if "gamma" in properties and self.grader is None:
            raise PropertyNotImplementedError("gamma needs an active set (see active_set=)")
        k = self.model.committee_size
        if not k and any(p in self.committee_properties for p in properties):
            raise PropertyNotImplementedError("committee properties need a model with a committee")
        positions = atoms.positions
        if not np.all(np.isfinite(positions)):
            bad = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
            raise AcealInputError(f"atom {bad} has a non-finite position {positions[bad]}")
        species = species_indices(atoms.numbers, self.elements)
        self._nl.update(positions, atoms.cell.array, pbc, atoms.numbers)
        threads = self.num_threads
        if threads is not None:
            threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
            numba.set_num_threads(threads)
        member_forces = k and (
            self.committee_forces or "forces_std" in properties or "forces_committee" in properties
        )
        ev = evaluate_tables(
            self.tables, species, self._nl.first, self._nl.j, self._nl.d, threads,
            committee=k if member_forces else 0,
        )  # fmt: skip
        energy = ev.energy
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = ev.energies
        self.results["forces"] = ev.forces
        if pbc.all():
            stress = ev.virial / atoms.get_volume()
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (stress + stress.T))
        if "gamma" in properties:
            self.results["gamma"] = self.grader(atoms)
        if k:
            e0 = self.tables.e0[species][:, None]
            site = ev.densities[:, 1 : k + 1] + e0  # committee site energies
            self.results["energy_committee"] = site.sum(axis=0)
            self.results["energy_std"] = float(site.sum(axis=0).std(ddof=1)) if k > 1 else 0.0
            spread = site.std(axis=1, ddof=1) if k > 1 else np.zeros(len(site))
            self.results["energies_std"] = spread
            if not member_forces:
                return
            fc = ev.forces_committee
            self.results["forces_committee"] = fc
            if k > 1:
                dev = fc - fc.mean(axis=0)
                self.results["forces_std"] = np.sqrt(np.einsum("kia,kia->i", dev, dev) / (k - 1))
            else:
                self.results["forces_std"] = np.zeros(len(site))
