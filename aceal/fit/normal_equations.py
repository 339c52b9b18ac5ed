"""Normal equations of a weighted linear least-squares fit, additive over configurations.

For every kind of observation (``"energy"``, ``"forces"``, ``"virial"``) we keep the
weighted Gram matrix ``A^T W A``, the right-hand side ``A^T W y``, the weighted target
norm ``y^T W y`` and the number of rows.  Rows arrive already scaled by ``sqrt(weight)``
(see :mod:`aceal.fit.assembly`), so ``W`` is the identity here.  Because every quantity is a
sum over rows, two :class:`NormalEquations` built from disjoint data add up to the one
built from their union: new configurations can be folded in without rebuilding, and MPI
ranks can assemble their share in parallel and reduce with ``+``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aceal.errors import AcealInputError

__all__ = ["KINDS", "NormalEquations", "Block"]

#: observation kinds, in the order reports list them
KINDS = ("energy", "forces", "virial")


@dataclass
class Block:
    """Sums over the (weighted) rows of one observation kind."""

    ata: np.ndarray
    aty: np.ndarray
    yty: float = 0.0
    n_rows: int = 0

    @classmethod
    def zeros(cls, n_basis: int) -> Block:
        return cls(np.zeros((n_basis, n_basis)), np.zeros(n_basis), 0.0, 0)

    def copy(self) -> Block:
        return Block(self.ata.copy(), self.aty.copy(), self.yty, self.n_rows)


@dataclass
class NormalEquations:
    """Additive normal equations ``A^T W A c = A^T W y`` split by observation kind.

    Parameters
    ----------
    n_basis
        Number of basis functions (columns of the design matrix).

    Attributes
    ----------
    blocks
        ``{kind: Block}`` for kind in :data:`KINDS`.
    n_configs, n_atoms
        Number of configurations and atoms folded in.
    """

    n_basis: int
    blocks: dict[str, Block] = field(default_factory=dict)
    n_configs: int = 0
    n_atoms: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            self.blocks.setdefault(kind, Block.zeros(self.n_basis))

    # ------------------------------------------------------------------ accumulate
    def add(self, kind: str, rows: np.ndarray, targets: np.ndarray,
            weights: float | np.ndarray = 1.0) -> None:
        """Fold rows of one kind in.

        Parameters
        ----------
        kind
            ``"energy"``, ``"forces"`` or ``"virial"``.
        rows
            ``(n_rows, n_basis)`` design rows (unweighted).
        targets
            ``(n_rows,)`` targets in the units of the rows.
        weights
            Scalar or ``(n_rows,)`` weights ``w`` (the rows are scaled by ``sqrt(w)``,
            so each row contributes ``w * residual**2`` to the loss).
        """
        if kind not in self.blocks:
            raise ValueError(f"unknown observation kind {kind!r}; expected one of {KINDS}")
        rows = np.asarray(rows, dtype=float)
        targets = np.asarray(targets, dtype=float).reshape(-1)
        if rows.ndim != 2 or rows.shape[1] != self.n_basis or rows.shape[0] != targets.size:
            raise ValueError(
                f"rows {rows.shape} and targets {targets.shape} do not match "
                f"n_basis={self.n_basis}")
        if rows.shape[0] == 0:
            return
        sw = np.sqrt(np.broadcast_to(np.asarray(weights, dtype=float), targets.shape))
        a = rows * sw[:, None]
        y = targets * sw
        b = self.blocks[kind]
        b.ata += a.T @ a
        b.aty += a.T @ y
        b.yty += float(y @ y)
        b.n_rows += int(np.count_nonzero(sw))

    def count(self, n_configs: int = 1, n_atoms: int = 0) -> None:
        """Record that ``n_configs`` configurations with ``n_atoms`` atoms were added."""
        self.n_configs += int(n_configs)
        self.n_atoms += int(n_atoms)

    # ------------------------------------------------------------------ combine
    def __add__(self, other: NormalEquations) -> NormalEquations:
        out = self.copy()
        out += other
        return out

    def __iadd__(self, other: NormalEquations) -> NormalEquations:
        if not isinstance(other, NormalEquations):
            return NotImplemented
        if other.n_basis != self.n_basis:
            raise ValueError(f"cannot add normal equations of {other.n_basis} and "
                             f"{self.n_basis} basis functions")
        for kind, ob in other.blocks.items():
            b = self.blocks.setdefault(kind, Block.zeros(self.n_basis))
            b.ata += ob.ata
            b.aty += ob.aty
            b.yty += ob.yty
            b.n_rows += ob.n_rows
        self.n_configs += other.n_configs
        self.n_atoms += other.n_atoms
        return self

    merge = __iadd__

    def copy(self) -> NormalEquations:
        return NormalEquations(self.n_basis, {k: b.copy() for k, b in self.blocks.items()},
                               self.n_configs, self.n_atoms)

    def total(self, kinds: tuple[str, ...] = KINDS) -> tuple[np.ndarray, np.ndarray, float, int]:
        """Return ``(A^T W A, A^T W y, y^T W y, n_rows)`` summed over ``kinds``.

        The Gram matrix is symmetrised exactly (``(G + G^T) / 2``).
        """
        ata = np.zeros((self.n_basis, self.n_basis))
        aty = np.zeros(self.n_basis)
        yty, n = 0.0, 0
        for kind in kinds:
            b = self.blocks[kind]
            ata += b.ata
            aty += b.aty
            yty += b.yty
            n += b.n_rows
        ata = 0.5 * (ata + ata.T)
        return ata, aty, yty, n

    def residual_norms(self, coefficients: np.ndarray) -> dict[str, float]:
        """Weighted squared residual ``||W^1/2 (A c - y)||^2`` per kind."""
        c = np.asarray(coefficients, dtype=float)
        return {k: float(max(b.yty - 2.0 * c @ b.aty + c @ b.ata @ c, 0.0))
                for k, b in self.blocks.items()}

    @property
    def n_rows(self) -> dict[str, int]:
        return {k: b.n_rows for k, b in self.blocks.items()}

    # ------------------------------------------------------------------ files
    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The equations as named arrays (exact; keys start with ``prefix``)."""
        arrays: dict[str, np.ndarray] = {
            "n_basis": np.array(self.n_basis),
            "n_configs": np.array(self.n_configs),
            "n_atoms": np.array(self.n_atoms),
            "kinds": np.array(list(self.blocks)),
        }
        for kind, b in self.blocks.items():
            arrays[f"{kind}_ata"] = b.ata
            arrays[f"{kind}_aty"] = b.aty
            arrays[f"{kind}_yty"] = np.array(b.yty)
            arrays[f"{kind}_n_rows"] = np.array(b.n_rows)
        return {prefix + k: v for k, v in arrays.items()}

    @classmethod
    def from_arrays(cls, f, prefix: str = "") -> NormalEquations:
        """Inverse of :meth:`to_arrays` (``f``: a mapping such as an open ``.npz``)."""
        blocks = {
            str(kind): Block(f[f"{prefix}{kind}_ata"].copy(), f[f"{prefix}{kind}_aty"].copy(),
                             float(f[f"{prefix}{kind}_yty"]), int(f[f"{prefix}{kind}_n_rows"]))
            for kind in f[prefix + "kinds"]
        }
        return cls(int(f[prefix + "n_basis"]), blocks, int(f[prefix + "n_configs"]),
                   int(f[prefix + "n_atoms"]))

    def save(self, path: str | Path) -> None:
        """Write to an ``.npz`` file (uncompressed, exact)."""
        np.savez(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> NormalEquations:
        """Read what :meth:`save` wrote."""
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls.from_arrays(f)
        except (KeyError, ValueError, OSError) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise AcealInputError(f"{path}: not a normal-equations file ({err})") from err
