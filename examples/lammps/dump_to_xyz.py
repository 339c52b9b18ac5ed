"""Turn LAMMPS dumps of extrapolative configurations into extended-XYZ candidates.

Reads ``extrapolative_structures.dump`` (``dump ... custom ... id type element x y z
f_pace_gamma``, see in.gamma_md) with ASE, keeps frames with max γ above ``--min-gamma``,
and writes them with the per-atom γ (``arrays["gamma"]``), ``info["max_gamma"]``,
``info["timestep"]`` and ``info["config_type"]``, ready for labelling or for
``aceal data import STORE candidates.xyz --allow-unlabelled``.

Usage: python dump_to_xyz.py [DUMP] [--out candidates.xyz] [--min-gamma 5] [--every 1]
"""

from __future__ import annotations

import argparse

import numpy as np
from ase.io import read, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", nargs="?", default="extrapolative_structures.dump")
    ap.add_argument("--out", default="candidates.xyz")
    ap.add_argument("--min-gamma", type=float, default=5.0)
    ap.add_argument("--every", type=int, default=1, help="keep every N-th selected frame")
    ap.add_argument("--config-type", default="lammps_gamma")
    args = ap.parse_args()
    frames = read(args.dump, ":", format="lammps-dump-text")
    out = []
    for atoms in frames:
        gamma = np.asarray(atoms.arrays.pop("f_pace_gamma"), dtype=float).ravel()
        atoms.arrays.pop("type", None)
        if gamma.max() <= args.min_gamma:
            continue
        atoms.arrays["gamma"] = gamma
        atoms.info["max_gamma"] = float(gamma.max())
        atoms.info["config_type"] = args.config_type
        out.append(atoms)
    out = out[:: max(args.every, 1)]
    write(args.out, out, format="extxyz")
    print(f"{len(out)} of {len(frames)} frames with max gamma > {args.min_gamma} -> {args.out}")


if __name__ == "__main__":
    main()
