"""Active learning vs random sampling on ``configs/cu-vacancy-eam.yaml``.

Prints one JSON line:

* ``campaign``: held-out force MAE (eV/Å) of every model version of an aceal-loop
  campaign against the reference calls spent so far;
* ``random``: the same basis and fit settings trained on the campaign's seed
  configurations plus the same number of configurations drawn at random from unbiased
  MD with the reference (frames every ``pool_stride`` steps at the campaign's
  temperatures), averaged over ``repeats`` draws;
* ``calls_to_reach_random_final``: the reference calls the campaign needed to reach the
  random baseline's final error (the baseline at the campaign's total call count), and
  whether that is at most half (``passes_half_calls``);
* ``fraction_wall_outside_reference``: share of the campaign's wall time not spent in
  reference calls (labelling and validation-set MD); ``wall_s_by_phase`` sums the
  iterations' phase timings (``md``, ``selection``, ``labelling`` with ``reference``
  inside it, ``store``, ``fit``, ``validation``, ``validation_set``) and
  ``wall_s_unaccounted`` is the rest (start-up, state files, model saving, logging).

The held-out set is high-temperature MD with the reference (its own seed, never seen in
training).  Usage: ``python benchmarks/bench_al.py [--config CFG] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_md(structures, calc_factory, temperatures, steps, stride, burn_in, seed):
    """Labelled frames of Langevin MD with the reference (energy, forces, stress)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.parallel import DummyMPI
    from ase.units import fs

    from aceal.loop.walker import maxwell_boltzmann

    rng = np.random.default_rng(seed)
    frames, calls = [], 0
    for s in structures:
        for temp in temperatures:
            a = Atoms(s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc)
            a.calc = calc_factory()
            maxwell_boltzmann(a, 2 * temp, rng)
            dyn = Langevin(a, 2.0 * fs, temperature_K=temp, friction=0.02 / fs, fixcm=False,
                           rng=rng, comm=DummyMPI())
            dyn.run(burn_in)
            calls += burn_in
            for _ in range(steps // stride):
                dyn.run(stride)
                calls += stride
                f = Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
                f.calc = SinglePointCalculator(f, energy=a.get_potential_energy(),
                                               forces=a.get_forces(), stress=a.get_stress())
                f.info["temperature"] = temp
                frames.append(f)
    return frames, calls


def force_mae(model, frames) -> float:
    from aceal.fit import predict

    preds = predict(model, frames)
    return float(np.mean(np.concatenate([np.abs(p.forces - f.get_forces()).ravel()
                                         for p, f in zip(preds, frames, strict=True)])))


class RandomBaseline:
    """Fits with the campaign's basis, weights, prior and solver to any subset of frames.

    The observations (design rows and targets) of each frame are computed once and cached,
    so a draw only sums normal equations: the same equations :class:`Refitter` folds, minus
    the active set, which the baseline does not use.
    """

    def __init__(self, basis, tables, fit_cfg, e0, directory):
        from aceal.loop.refit import Refitter

        self.refit = Refitter(basis, tables, fit_cfg, e0, directory)
        self.cache: dict[int, object] = {}

    def _obs(self, key, atoms):
        from aceal.descriptors import design_rows
        from aceal.fit import get_labels
        from aceal.fit.assembly import observations

        if key not in self.cache:
            design = design_rows(self.refit.tables, [atoms])[0]
            self.cache[key] = observations(atoms, design, get_labels(atoms), self.refit.weights,
                                           self.refit.e0)
        return self.cache[key]

    def fit(self, keyed_frames, seed):
        from aceal.fit import NormalEquations
        from aceal.model import ACEModel

        neq = NormalEquations(len(self.refit.basis))
        for key, atoms in keyed_frames:
            obs = self._obs(key, atoms)
            for kind, rows in obs.rows.items():
                neq.add(kind, rows, obs.targets[kind], np.full(len(rows), obs.weights[kind]))
            neq.count(1, len(atoms))
        self.refit.neq = neq
        post, _ = self.refit.solve(np.random.default_rng(seed))
        return ACEModel(self.refit.basis, post.mean, e0=self.refit.e0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "cu-vacancy-eam.yaml"))
    ap.add_argument("--quick", action="store_true", help="smaller pools (smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="keep the campaign here")
    args = ap.parse_args()

    from aceal.descriptors import DesignTables
    from aceal.loop.cli import run_campaign
    from aceal.loop.config import load_campaign_config
    from aceal.loop.log import read_log
    from aceal.loop.structures import build_structures
    from aceal.model import ACEModel
    from aceal.reference import make_calculator
    from aceal.store import open_store

    cfg = load_campaign_config(args.config)
    cfg.output.progress = False
    spec, base = cfg.reference.calculator, cfg.base_dir

    def factory():
        return make_calculator(spec, base)

    structures = build_structures(cfg.structures, np.random.default_rng([cfg.seed, 1]))
    t_val = cfg.validation.temperature
    steps = 300 if args.quick else 600
    t0 = time.perf_counter()
    heldout, _ = reference_md(structures, factory, [t_val], steps, 50, 200, seed=12345)
    pool, pool_calls = reference_md(structures, factory, cfg.md.temperature, steps, 10,
                                    100, seed=777)
    t_ref_md = time.perf_counter() - t0

    tmp = tempfile.TemporaryDirectory()
    out = Path(args.out) if args.out else Path(tmp.name) / "campaign"
    t0 = time.perf_counter()
    run_campaign(cfg, out, quiet=True)
    t_campaign = time.perf_counter() - t0
    recs = [r for r in read_log(out / cfg.output.log) if r["event"] == "iteration"]
    ref_time = sum((r["timings"].get("reference", 0.0) + r["timings"].get("validation_set", 0.0))
                   for r in recs)
    phases: dict[str, float] = {}
    for r in recs:
        for k, v in r["timings"].items():
            if k != "total":
                phases[k] = phases.get(k, 0.0) + float(v)
    campaign_curve = []
    for r in recs:
        path = out / "models" / f"model-{r['iteration']:04d}.yaml"
        if path.is_file():
            m = ACEModel.load(path)
            campaign_curve.append({"reference_calls": r["reference_calls_total"],
                                   "n_train": r["n_train"],
                                   "forces_mae": force_mae(m, heldout)})
    # random baseline: the campaign's seeds + random unbiased-MD frames
    from aceal.fit.fitter import build_basis

    basis, _ = build_basis(cfg.basis, cfg.elements, structures)
    tables = DesignTables(basis)
    with open_store(out / cfg.output.store) as store:
        seeds = store[store.indices(source="seed")]
        e0 = ACEModel.load(out / "model.yaml").e0
        e0 = dict(zip(cfg.elements, [float(x) for x in e0], strict=True))
    n_seed = len(seeds)
    random_curve = []
    rng = np.random.default_rng(2024)
    t0 = time.perf_counter()
    baseline = RandomBaseline(basis, tables, cfg.fit, e0, Path(tmp.name) / "random")
    for c in campaign_curve:
        n_extra = c["reference_calls"] - n_seed
        maes = []
        for rep in range(args.repeats):
            pick = rng.choice(len(pool), size=min(max(n_extra, 0), len(pool)), replace=False)
            frames = [(("seed", k), a) for k, a in enumerate(seeds)]
            frames += [(("pool", int(i)), pool[i]) for i in pick]
            maes.append(force_mae(baseline.fit(frames, rep), heldout))
        random_curve.append({"reference_calls": c["reference_calls"],
                             "forces_mae": float(np.mean(maes)),
                             "forces_mae_std": float(np.std(maes))})
    t_random = time.perf_counter() - t0
    final_calls = campaign_curve[-1]["reference_calls"]
    target = random_curve[-1]["forces_mae"]
    reach = next((c["reference_calls"] for c in campaign_curve if c["forces_mae"] <= target),
                 None)
    result = {
        "benchmark": "bench_al",
        "config": str(Path(args.config).name),
        "heldout_frames": len(heldout),
        "heldout_temperature_K": t_val,
        "random_pool_frames": len(pool),
        "campaign": campaign_curve,
        "random": random_curve,
        "random_final_forces_mae": target,
        "campaign_final_forces_mae": campaign_curve[-1]["forces_mae"],
        "campaign_final_calls": final_calls,
        "calls_to_reach_random_final": reach,
        "passes_half_calls": reach is not None and reach <= final_calls / 2,
        "campaign_wall_s": t_campaign,
        "campaign_reference_wall_s": ref_time,
        "fraction_wall_outside_reference": 1.0 - ref_time / t_campaign,
        "wall_s_by_phase": {k: round(v, 2) for k, v in phases.items()},
        "wall_s_unaccounted": round(t_campaign - sum(v for k, v in phases.items()
                                                     if k != "reference"), 2),
        "reference_md_wall_s": t_ref_md,
        "random_baseline_wall_s": t_random,
        "reference_md_calls_for_pools": pool_calls,
    }
    print(json.dumps(result))
    tmp.cleanup()


if __name__ == "__main__":
    main()
