"""Short molecular dynamics: Langevin runs, RDF, diffusion from the MSD, NVE drift.

Times in fs (input) and ps (rates), temperatures in K, lengths in Å, energies in eV.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list

from aceal.validate.bulk import equation_of_state
from aceal.validate.crystal import element_structure, supercell

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta as _thermalize
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as _thermalize

__all__ = ["run_langevin", "rdf", "msd_diffusion", "nve_drift", "md_properties"]


def run_langevin(
    atoms: Atoms,
    calc: Calculator,
    temperature_K: float,
    steps: int,
    timestep_fs: float = 2.0,
    friction_per_fs: float = 0.02,
    interval: int = 5,
    seed: int = 0,
) -> list[Atoms]:
    """Langevin MD from Maxwell-Boltzmann velocities; returns snapshots every ``interval`` steps.

    The snapshots keep unwrapped positions (ASE does not wrap during MD).
    """
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    _thermalize(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    dyn = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    frames = [atoms.copy()]

    def grab():
        frames.append(atoms.copy())

    dyn.attach(grab, interval=interval)
    dyn.run(steps)
    return frames[1:] if len(frames) > 1 else frames


def rdf(frames: list[Atoms], r_max: float = 6.0, n_bins: int = 120) -> dict:
    """Radial distribution function g(r) averaged over frames (all species together).

    Returns
    -------
    dict
        ``r_A`` (bin centres), ``g`` (lists), ``first_peak_A``, ``first_peak_height``.
    """
    edges = np.linspace(0.0, r_max, n_bins + 1)
    hist = np.zeros(n_bins)
    rho_n = 0.0
    for at in frames:
        at = at.copy()
        at.wrap()
        d = neighbor_list("d", at, r_max)
        hist += np.histogram(d, bins=edges)[0]
        rho_n += len(at) * len(at) / at.get_volume()
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (shell * rho_n)
    r = 0.5 * (edges[1:] + edges[:-1])
    i = int(np.argmax(g))
    return {
        "r_A": r.tolist(),
        "g": g.tolist(),
        "first_peak_A": float(r[i]),
        "first_peak_height": float(g[i]),
    }


def _unwrap(frames: list[Atoms]) -> np.ndarray:
    """Positions (n_frames, n_atoms, 3) made continuous by minimum-image steps."""
    from ase.geometry import find_mic

    pos = [frames[0].positions.copy()]
    for prev, cur in zip(frames[:-1], frames[1:], strict=False):
        d, _ = find_mic(cur.positions - prev.positions, cur.cell, cur.pbc)
        pos.append(pos[-1] + d)
    return np.array(pos)


def msd_diffusion(frames: list[Atoms], dt_fs: float) -> dict:
    """Mean-squared displacement and diffusion coefficient D = slope / 6.

    The centre-of-mass drift is removed; the slope is fitted over the second half of
    the MSD(t) curve (time between frames ``dt_fs``).

    Returns
    -------
    dict
        ``t_ps``, ``msd_A2`` (lists), ``D_A2_per_ps`` and ``D_cm2_per_s``.
    """
    pos = _unwrap(frames)
    pos -= pos.mean(axis=1, keepdims=True)
    disp = pos - pos[0]
    msd = (disp**2).sum(axis=2).mean(axis=1)
    t = np.arange(len(frames)) * dt_fs / 1000.0
    half = len(t) // 2
    slope = float(np.polyfit(t[half:], msd[half:], 1)[0]) if len(t) - half >= 2 else float("nan")
    d = slope / 6.0
    return {"t_ps": t.tolist(), "msd_A2": msd.tolist(), "D_A2_per_ps": d, "D_cm2_per_s": d * 1e-4}


def nve_drift(
    atoms: Atoms,
    calc: Calculator,
    temperature_K: float,
    steps: int,
    timestep_fs: float = 2.0,
    seed: int = 0,
) -> dict:
    """Total-energy conservation in velocity-Verlet NVE.

    Returns
    -------
    dict
        ``drift_eV_per_atom_per_ps`` (linear-fit slope), ``max_dev_eV_per_atom``
        (largest |E(t) - E(0)|), ``t_ps`` and ``e_tot_eV_per_atom`` (lists).
    """
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    _thermalize(atoms, temperature_K=2 * temperature_K, rng=rng)
    Stationary(atoms)
    n = len(atoms)
    energies = [atoms.get_total_energy() / n]
    dyn = VelocityVerlet(atoms, timestep_fs * units.fs)
    dyn.attach(lambda: energies.append(atoms.get_total_energy() / n), interval=1)
    dyn.run(steps)
    e = np.array(energies[1:]) if len(energies) > 1 else np.array(energies)
    t = np.arange(len(e)) * timestep_fs / 1000.0
    slope = float(np.polyfit(t, e, 1)[0]) if len(e) > 2 else float("nan")
    return {
        "drift_eV_per_atom_per_ps": slope,
        "max_dev_eV_per_atom": float(np.abs(e - e[0]).max()),
        "t_ps": t.tolist(),
        "e_tot_eV_per_atom": e.tolist(),
    }


def md_properties(
    element: str,
    calc: Calculator,
    a0: float | None = None,
    structure: str | None = None,
    size: int = 3,
    temperatures_K: tuple[float, ...] = (300.0, 1000.0),
    steps: int = 400,
    timestep_fs: float = 2.0,
    interval: int = 5,
    nve_steps: int = 200,
    seed: int = 0,
    r_max: float = 6.0,
) -> dict:
    """Langevin MD of the bulk crystal at each temperature (RDF, MSD, D) and an NVE run.

    The first quarter of each Langevin run is discarded as equilibration. The NVE
    run starts at the first temperature (velocities drawn at twice T so that the
    lattice equilibrates near T).

    Returns
    -------
    dict
        ``{"T300": {"rdf": ..., "msd": ..., "D_A2_per_ps": ..., "first_peak_A": ...},
        ..., "nve": nve_drift(...), "a0_A": a0, "n_atoms": N}``.
    """
    structure, _ = element_structure(element, structure)
    if a0 is None:
        a0 = equation_of_state(element, calc, structure)["a0_A"]
    atoms = supercell(element, structure, a0, size)
    out: dict = {"a0_A": float(a0), "n_atoms": len(atoms)}
    for k, temp in enumerate(temperatures_K):
        frames = run_langevin(
            atoms, calc, temp, steps, timestep_fs, interval=interval, seed=seed + k
        )
        prod = frames[len(frames) // 4 :]
        g = rdf(prod, r_max=r_max)
        m = msd_diffusion(prod, dt_fs=interval * timestep_fs)
        out[f"T{int(round(temp))}"] = {
            "temperature_K": float(temp),
            "rdf": g,
            "msd": m,
            "D_A2_per_ps": m["D_A2_per_ps"],
            "first_peak_A": g["first_peak_A"],
            "first_peak_height": g["first_peak_height"],
        }
    out["nve"] = nve_drift(atoms, calc, temperatures_K[0], nve_steps, timestep_fs, seed=seed)
    return out
