"""Regenerate ``reference_pyace_fullprec.json``: pyace results at full precision.

``reference_pyace.xyz`` (from ../shared/data/pace) stores positions and results with 8
decimals, which limits any comparison to ~1e-7 eV/Å (pyace itself differs from that file
by 1e-7 eV/Å when re-evaluated on the rounded positions). This script re-evaluates every
structure, on exactly the stored positions, with pyace (python-ace 0.4.0rc1; install with
``pip install --pre python-ace``; not an aceal dependency) and writes every number at full
double precision (JSON keeps the shortest exact repr of each float).
Run from this folder: ``python make_pyace_reference.py``.
"""

import json
from pathlib import Path

import numpy as np
from ase.io import read
from pyace import PyACECalculator

here = Path(__file__).parent
frames = read(here / "reference_pyace.xyz", ":")
calcs = {}
out = []
for atoms in frames:
    name = atoms.info["model"]
    calcs.setdefault(name, PyACECalculator(str(here / name)))
    a = atoms.copy()
    a.calc = calcs[name]
    entry = {
        "model": name,
        "structure": atoms.info["structure"],
        "energy": float(a.get_potential_energy()),
        "forces": a.get_forces().tolist(),
        "energies": a.get_potential_energies().tolist(),
    }
    if a.pbc.all():
        entry["stress"] = a.get_stress().tolist()
    out.append(entry)
    dforce = np.abs(a.get_forces() - atoms.get_forces()).max()
    print(f"{name:22s} {atoms.info['structure']:14s} |F - F(8-decimal file)| = {dforce:.1e} eV/Å")
(here / "reference_pyace_fullprec.json").write_text(json.dumps(out))
