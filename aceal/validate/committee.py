"""Committee spread of material properties, without a reference (for property-driven stopping).

:func:`committee_properties` computes the named properties with the model (the posterior
mean) and with every committee member, by the protocols of :mod:`aceal.validate.bulk` and
:mod:`aceal.validate.defects` (each member relaxes its own lattice, defects and NEB path),
and reports each property's value and spread. The spread is in the property's tolerance
unit: eV for formation and migration energies, relative (σ / |value|) for the others; a
property with several components (``elastic``: C11, C12, C44; ``surface``: three facets)
reports its largest component spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase.calculators.calculator import Calculator

from aceal.validate import bulk, defects

__all__ = ["PROPERTIES", "committee_properties"]

#: name -> (tolerance kind "eV" or "relative", components)
PROPERTIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "a0": ("relative", ("a0",)),
    "bulk_modulus": ("relative", ("B",)),
    "elastic": ("relative", ("C11", "C12", "C44")),
    "vacancy_formation": ("eV", ("Evac",)),
    "vacancy_migration": ("eV", ("Em",)),
    "surface": ("relative", ("gamma(100)", "gamma(110)", "gamma(111)")),
    "interstitial_formation": ("eV", ("Eint (shell 1)", "Eint (shell 2)", "Eint (shell 3)")),
}


def _components(name: str, element: str, calc: Calculator, settings, cache: dict) -> list[float]:
    """The values (Å, GPa, eV, J/m²) of one property's components with one calculator."""
    if "eos" not in cache:
        cache["eos"] = bulk.equation_of_state(element, calc)
    a0 = cache["eos"]["a0_A"]
    if name == "a0":
        return [a0]
    if name == "bulk_modulus":
        return [cache["eos"]["B_GPa"]]
    if name == "elastic":
        c = bulk.elastic_constants(element, calc, a0=a0)
        return [c["C11_GPa"], c["C12_GPa"], c["C44_GPa"]]
    if name == "vacancy_formation":
        return [defects.vacancy_formation(element, calc, a0=a0,
                                          size=settings.vacancy_size)["Evac_eV"]]
    if name == "vacancy_migration":
        return [defects.vacancy_migration(element, calc, a0=a0, size=settings.neb_size,
                                          n_images=settings.neb_images,
                                          fmax=settings.neb_fmax)["Em_eV"]]
    if name == "surface":
        s = defects.surface_energies(element, calc, a0=a0,
                                     min_thickness=settings.surface_min_thickness)
        return [s[f]["gamma_J_per_m2"] for f in ("100", "110", "111")]
    if name == "interstitial_formation":
        found = defects.interstitial_formations(element, calc, a0=a0,
                                                size=settings.vacancy_size)
        return [v["Eint_eV"] for v in found.values()]
    raise KeyError(name)


def committee_properties(model: Calculator, members: Sequence[Calculator],
                         elements: Sequence[str], names: Sequence[str], settings) -> dict:
    """``{element: {name: {"value": [...], "std": [...], "sigma": s, "unit": kind}}}``.

    ``value``: the model's components; ``std``: the members' sample standard deviation per
    component; ``sigma``: the largest component spread in the tolerance unit (eV, or
    relative to the model's value). ``settings``: a
    :class:`aceal.validate.suite.ValidationSettings` (cell sizes, NEB).
    """
    out: dict = {}
    for el in elements:
        caches = [{} for _ in range(len(members) + 1)]
        out[el] = {}
        for name in names:
            kind, labels = PROPERTIES[name]
            vals = np.array([_components(name, el, c, settings, cache)
                             for c, cache in zip([model, *members], caches, strict=True)])
            value, spread = vals[0], vals[1:].std(axis=0, ddof=1)
            scaled = spread if kind == "eV" else spread / np.maximum(np.abs(value), 1e-300)
            out[el][name] = {"components": list(labels), "value": value.tolist(),
                             "std": spread.tolist(), "sigma": float(scaled.max()),
                             "unit": kind}
    return out
