"""Observation weights: global per kind, overridden per ``config_type``, times a
per-configuration factor.

A weight ``w`` multiplies the squared residual of a row (the row is scaled by
``sqrt(w)``), so ``w`` is an inverse variance and ``1/sqrt(w)`` the error one is willing
to accept:

* ``energy``: per (eV/atom)^2 of the energy per atom, e.g. ``1e4`` ~ 10 meV/atom,
* ``forces``: per (eV/Å)^2 of each Cartesian force component, e.g. ``100`` ~ 0.1 eV/Å,
* ``virial``: per (eV/atom)^2 of each virial component per atom, ``V sigma / N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Weights"]


@dataclass(frozen=True)
class Weights:
    """Weights of the three observation kinds.

    Parameters
    ----------
    energy
        Weight of the energy per atom, 1/(eV/atom)^2.
    forces
        Weight of each force component, 1/(eV/Å)^2.
    virial
        Weight of each virial-per-atom component, 1/(eV/atom)^2.
    config_types
        ``{config_type: {"energy": w, "forces": w, "virial": w}}``: replaces the global
        weight of the listed kinds for configurations of that type.
    """

    energy: float = 1.0e4
    forces: float = 1.0e2
    virial: float = 1.0e3
    config_types: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in ("energy", "forces", "virial"):
            if getattr(self, kind) < 0:
                raise ValueError(f"weight {kind} must be >= 0")
        for ct, over in self.config_types.items():
            for kind, w in over.items():
                if kind not in ("energy", "forces", "virial"):
                    raise ValueError(f"config_types.{ct}.{kind}: unknown weight kind")
                if w < 0:
                    raise ValueError(f"config_types.{ct}.{kind}: weight must be >= 0")

    @classmethod
    def from_settings(cls, section) -> Weights:
        """The weights of a ``fit.weights`` section (:class:`aceal.fit.config.WeightsSettings`;
        ``None`` in a config type's override means "the global weight")."""
        over = {ct: d.model_dump(exclude_none=True) for ct, d in section.config_types.items()}
        return cls(section.energy, section.forces, section.virial, over)

    def for_config(self, config_type: str | None, factor: float = 1.0) -> dict[str, float]:
        """Weights ``{"energy", "forces", "virial"}`` of one configuration.

        Parameters
        ----------
        config_type
            The configuration's type (``None``: no override applies).
        factor
            Per-configuration multiplier (e.g. ``atoms.info["weight"]``).
        """
        over = self.config_types.get(config_type, {}) if config_type is not None else {}
        return {kind: float(over.get(kind, getattr(self, kind))) * float(factor)
                for kind in ("energy", "forces", "virial")}
