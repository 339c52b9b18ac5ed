"""ACE models: basis + coefficients + reference energies + optional core repulsion.

An :class:`ACEModel` is either a *linear* model over an :class:`~aceal.basis.ACEBasis`
(what ``aceal fit`` produces; saved as human-readable YAML with a format version), or a
PACE C-tilde potential loaded from a ``.yace`` file. Both evaluate through the same
kernel (:mod:`aceal.kernels.evaluate`). Energies in eV, distances in Å.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aceal.basis.ctilde import CTildePotential
from aceal.basis.tables import KernelTables, build_tables
from aceal.errors import AcealInputError
from aceal.formats.yace import read_yace, write_yace
from aceal.jsonable import to_jsonable

MODEL_FORMAT = "aceal-model"
MODEL_FORMAT_VERSION = 1


def _e0_array(e0: Mapping[str, float] | Sequence[float] | None, elements: list[str]) -> np.ndarray:
    if e0 is None:
        return np.zeros(len(elements))
    if isinstance(e0, Mapping):
        unknown = sorted(set(e0) - set(elements))
        if unknown:
            raise AcealInputError(f"e0 names elements not in the model: {', '.join(unknown)}")
        return np.array([float(e0.get(el, 0.0)) for el in elements])
    arr = np.asarray(e0, dtype=float).ravel()
    if arr.size != len(elements):
        raise AcealInputError(f"e0 has {arr.size} values for {len(elements)} elements")
    return arr


class ACEModel:
    """A linear ACE model, or a PACE potential.

    Parameters
    ----------
    basis
        The :class:`~aceal.basis.ACEBasis` the coefficients refer to.
    coefficients
        Shape ``(len(basis),)``: site energy ``E_i = E0(Z_i) + sum_k c_k B_k(i)`` (eV).
    e0
        Reference energy per element (eV): a mapping symbol → value, or a sequence in
        the basis' element order. Default 0.
    repulsion
        Optional core repulsion ``prehc * exp(-lambdahc r^2) / r`` (eV, Å) applied below the
        basis' inner cutoff ``r_in``: ``{"prehc": 400.0, "lambdahc": 7.0}``.
    committee
        Optional ``(K, len(basis))`` coefficient vectors (e.g. posterior samples); their
        energies are evaluated in the same kernel pass as the mean.
    metadata
        Free-form information saved with the model (fit settings, errors, provenance).
    """

    def __init__(
        self,
        basis: Any = None,
        coefficients: Sequence[float] | np.ndarray | None = None,
        e0: Mapping[str, float] | Sequence[float] | None = None,
        repulsion: Mapping[str, float] | None = None,
        committee: np.ndarray | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        ctilde: CTildePotential | None = None,
    ) -> None:
        self.metadata = dict(metadata or {})
        self.basis = basis
        self.repulsion = dict(repulsion) if repulsion else None
        if ctilde is not None:
            if basis is not None:
                raise AcealInputError("give either a basis with coefficients or a ctilde potential")
            self._ctilde = ctilde
            self.coefficients = None
            self.committee = None
            self.e0 = np.asarray(ctilde.e0, dtype=float)
            return
        if basis is None or coefficients is None:
            raise AcealInputError("an ACEModel needs a basis and coefficients (or a .yace file)")
        coef = np.asarray(coefficients, dtype=float)
        if coef.shape != (len(basis),):
            raise AcealInputError(
                f"coefficients have shape {coef.shape}, the basis has {len(basis)} functions"
            )
        if not np.all(np.isfinite(coef)):
            raise AcealInputError("coefficients contain NaN or inf")
        self.coefficients = coef
        if committee is not None:
            committee = np.atleast_2d(np.asarray(committee, dtype=float))
            if committee.shape[1] != len(basis):
                raise AcealInputError(
                    f"committee has shape {committee.shape}, expected (K, {len(basis)})"
                )
        self.committee = committee
        self.e0 = _e0_array(e0, list(basis.elements))
        self._ctilde = None

    # ------------------------------------------------------------------ properties
    @property
    def elements(self) -> list[str]:
        """Chemical symbols in species order."""
        return list(self.ctilde.elements)

    @property
    def cutoff(self) -> float:
        """Largest pair cutoff (Å)."""
        return self.ctilde.cutoff

    @property
    def committee_size(self) -> int:
        return 0 if self.committee is None else len(self.committee)

    def committee_models(self) -> list[ACEModel]:
        """One plain model per committee member (same basis, E0 and repulsion; the
        member's coefficients), e.g. to compute a property's spread member by member."""
        if self.committee is None:
            return []
        return [ACEModel(self.basis, c, e0=self.e0, repulsion=self.repulsion)
                for c in self.committee]

    @property
    def ctilde(self) -> CTildePotential:
        """The folded C-tilde form the kernels evaluate."""
        if self._ctilde is None:
            coef = self.coefficients
            if self.committee is not None:
                coef = np.column_stack([coef, self.committee.T])
            pot = self.basis.ctilde_potential(coef, e0=self.e0)
            if self.repulsion:
                for bond in pot.bonds.values():
                    bond.prehc = float(self.repulsion.get("prehc", 0.0))
                    bond.lambdahc = float(self.repulsion.get("lambdahc", 0.0))
            self._ctilde = pot
        return self._ctilde

    @cached_property
    def tables(self) -> KernelTables:
        """Kernel arrays, built on first use."""
        return build_tables(self.ctilde)

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | Path) -> ACEModel:
        """Load an aceal YAML model or a PACE ``.yace`` / ``.yaml`` C-tilde potential."""
        path = Path(path)
        if not path.is_file():
            raise AcealInputError(f"{path}: model file not found")
        if path.suffix == ".yace":
            return cls(ctilde=read_yace(path), metadata={"source": str(path)})
        try:
            doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            doc = None  # PACE files use sequence keys that plain YAML mappings reject
        if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
            if isinstance(doc, dict) or doc is None:
                try:
                    return cls(ctilde=read_yace(path), metadata={"source": str(path)})
                except AcealInputError:
                    pass
            raise AcealInputError(f"{path}: neither an aceal model nor a PACE potential")
        version = doc.get("version")
        if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
            raise AcealInputError(
                f"{path}: model format version {version!r} is newer than this aceal "
                f"understands ({MODEL_FORMAT_VERSION}); upgrade aceal"
            )
        from aceal.basis import ACEBasis

        for key in ("basis", "coefficients"):
            if key not in doc:
                raise AcealInputError(f"{path}: missing key {key!r}")
        basis = ACEBasis.from_dict(doc["basis"])
        return cls(
            basis,
            np.asarray(doc["coefficients"], dtype=float),
            e0=doc.get("e0"),
            repulsion=doc.get("repulsion"),
            committee=None if doc.get("committee") is None else np.asarray(doc["committee"]),
            metadata=doc.get("metadata"),
        )

    def save(self, path: str | Path) -> None:
        """Save as aceal YAML (``.yaml``/``.yml``) or as PACE ``.yace`` for LAMMPS."""
        path = Path(path)
        if path.suffix == ".yace":
            write_yace(self.ctilde, path)
            return
        if self.coefficients is None:
            raise AcealInputError(
                f"{path}: a PACE potential can only be saved as .yace (it has no linear basis)"
            )
        doc = {
            "format": MODEL_FORMAT,
            "version": MODEL_FORMAT_VERSION,
            "elements": list(self.basis.elements),
            "e0": {el: float(v) for el, v in zip(self.basis.elements, self.e0, strict=True)},
            "basis": self.basis.to_dict(),
            "repulsion": self.repulsion,
            "coefficients": [float(c) for c in self.coefficients],
            "committee": None
            if self.committee is None
            else [[float(c) for c in row] for row in self.committee],
            "metadata": to_jsonable(self.metadata),
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
        tmp.replace(path)

    def copy(self) -> ACEModel:
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        if self.coefficients is None:
            nfunc = sum(len(v) for v in self.ctilde.functions.values())
            return f"ACEModel(PACE potential, elements={self.elements}, functions={nfunc})"
        return (
            f"ACEModel(elements={self.elements}, functions={len(self.coefficients)}, "
            f"committee={self.committee_size}, cutoff={self.cutoff:g} Å)"
        )

