"""On-the-fly learning against the AIMD route and against random selection, any campaign.

``python benchmarks/bench_al.py --config CFG [--budget N] [--seeds K] [--quick]``
prints one JSON line and writes one plot (``--plot``, default ``bench_al-<config>.png``).

Three arms, each a sequence of models at budgets of labelled reference calls
(16, 24, 32, 48, 64 up to ``--budget``):

* ``campaign``: ``aceal-loop`` on the config as given (its model of the last iteration
  within each budget; the stopping rule is set to the budget, patience off);
* ``random_selection``: the same loop with ``selection.method: random``: each batch drawn
  uniformly at random from the candidates, the protocols' batch share and rare-event
  priority as configured (what the uncertainty signals buy);
* ``aimd``: the AIMD route: Langevin MD with the reference on the config's structures at
  its temperatures, as many MD steps as the campaign's walkers ran within the budget
  (split evenly over structures and temperatures, plus a burn-in), frames every
  ``md.sample_interval`` steps drawn at random and fitted with the campaign's basis,
  weights, prior and solver.  Its true cost is every reference MD step
  (``aimd_total_reference_calls``), besides the labelled count (frames in the fit).

Each model is scored on

1. ``thermal``: energy (eV/atom) and force (eV/Å) MAE on held-out reference MD frames at
   the config's validation temperature (own seed);
2. ``saddle``: the Liu–He–Mo metrics on the rare-event atoms (moving atom and its
   neighbours at the saddle) of held-out saddle frames: the intermediate images of a
   reference climbing-image NEB of each hop the config's structures allow
   (:mod:`aceal.validate.saddles`: a vacancy hop per vacancy structure, an interstitialcy
   step per interstitial structure) and ``--saddle-copies`` copies of each with every
   atom displaced by ``--saddle-sigma`` Å (thermal crossings of the saddle region; at the
   converged path itself the forces near the saddle are ~0 and have no direction), all
   labelled by the reference: medians and 95th percentiles of ``||F_pred| - |F_ref||``
   (eV/Å) and of the force angle (degrees, forces below 0.05 eV/Å left out), and the
   force-component MAE on those atoms;
3. ``properties``: ``aceal validate``'s ``bulk`` and ``defects`` suites against the
   reference (QUICK settings): relative error of every property, their mean
   (``property_rel_error_mean``, E0 left out), and the vacancy formation and migration
   energy errors in eV.

``aimd.full_pool`` scores the same fit to every frame of the AIMD pool: the floor of
what more data of the thermal distribution buys with this basis; ``--floor-basis JSON``
adds that floor for other basis sections (e.g. ``'{"r_cut": 7.5}'``), to tell a data
shortage from a basis too small or a cutoff too short.

``calls_to_reach`` gives, per metric, the labelled calls at which the campaign and the
random-selection arm first reach the AIMD route's final value (means over seeds), and
``targets`` checks the issue's criteria.  The campaign's total reference calls include
its validation-set MD (``validation.frames x steps_between``), which it needs only for
logging and stopping.  ``--quick``: budget 24, one seed per structure and per arm,
shorter MD and a small basis
(a smoke test, numbers meaningless).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGETS = (16, 24, 32, 48, 64)
ARMS = ("campaign", "random_selection", "aimd")
RARE_METRICS = ("rare_mag_err_median", "rare_mag_err_p95", "rare_angle_median",
                "rare_angle_p95")
PROPERTY_METRICS = ("property_rel_error_mean", "vacancy_formation_abs_error_eV",
                    "vacancy_migration_abs_error_eV")
METRICS = ("thermal_energy_mae", "thermal_forces_mae", *RARE_METRICS, "rare_forces_mae",
           *PROPERTY_METRICS)
UNITS = {"thermal_energy_mae": "eV/atom", "thermal_forces_mae": "eV/Å",
         "rare_mag_err_median": "eV/Å", "rare_mag_err_p95": "eV/Å",
         "rare_angle_median": "deg", "rare_angle_p95": "deg", "rare_forces_mae": "eV/Å",
         "property_rel_error_mean": "-", "vacancy_formation_abs_error_eV": "eV",
         "vacancy_migration_abs_error_eV": "eV"}


# --------------------------------------------------------------------------- reference
def reference_md(structures, calc_factory, temperatures, steps, stride, burn_in, seed,
                 timestep=2.0, friction=0.02):
    """Labelled frames of Langevin MD with the reference (energy, forces, stress).

    Returns ``(frames, calls)``: frames every ``stride`` steps after ``burn_in`` steps,
    for every structure and temperature (K), and the reference calls (MD steps) made.
    """
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
            dyn = Langevin(a, timestep * fs, temperature_K=temp, friction=friction / fs,
                           fixcm=False, rng=rng, comm=DummyMPI())
            dyn.run(burn_in)
            calls += burn_in
            for _ in range(steps // stride):
                dyn.run(stride)
                calls += stride
                f = Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
                stress = a.get_stress() if a.pbc.all() else None
                f.calc = SinglePointCalculator(f, energy=a.get_potential_energy(),
                                               forces=a.get_forces(), stress=stress)
                f.info["temperature"] = temp
                f.info["config_type"] = s.info.get("config_type", "default")
                frames.append(f)
    return frames, calls


def perfect_lattices(cfg, structures):
    """The defect-free lattice of every ``builder: bulk`` structure (``None`` otherwise).

    Same spec without vacancies, interstitials, rattle and strain, then given the
    structure's own cell (which carries any strain) with the atoms scaled along.
    """
    from aceal.loop.structures import build_structure

    out = []
    for atoms, spec in zip(structures, cfg.structures, strict=True):
        if spec.builder != "bulk" or spec.surface is not None or not atoms.pbc.all():
            out.append(None)
            continue
        p = build_structure(spec.model_copy(update={"vacancies": 0, "interstitials": 0,
                                                    "rattle": 0.0, "strain": 0.0}),
                            np.random.default_rng(0))
        p.set_cell(atoms.cell, scale_atoms=True)
        p.wrap()
        out.append(p)
    return out


class CachedCalculator:
    """Memoises a deterministic calculator by (numbers, positions, cell, pbc).

    The validation suites run the reference by the same protocol for every model, so
    after the first model every reference call is a cache hit.
    """

    def __new__(cls, calc):
        from ase.calculators.calculator import Calculator, all_changes

        class _Cached(Calculator):
            implemented_properties = ["energy", "free_energy", "forces", "stress"]

            def __init__(self):
                super().__init__()
                self.memo: dict = {}
                self.hits = self.misses = 0

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                a = self.atoms
                key = (a.numbers.tobytes(), np.round(a.positions, 12).tobytes(),
                       np.round(a.cell.array, 12).tobytes(), a.pbc.tobytes())
                if key not in self.memo:
                    self.misses += 1
                    b = a.copy()
                    b.calc = calc
                    res = {"energy": float(b.get_potential_energy()),
                           "forces": np.array(b.get_forces())}
                    res["free_energy"] = res["energy"]
                    if b.pbc.all():
                        res["stress"] = np.array(b.get_stress())
                    self.memo[key] = res
                else:
                    self.hits += 1
                res = dict(self.memo[key])
                if "stress" in properties and "stress" not in res:
                    raise NotImplementedError("stress of a non-periodic cell")
                self.results = res

        return _Cached()


# --------------------------------------------------------------------------- scoring
class Scorer:
    """Every metric of one model: thermal MAEs, saddle metrics, property errors."""

    def __init__(self, cfg, heldout, paths, ref_calc, settings):
        self.cfg, self.heldout, self.paths = cfg, heldout, paths
        self.ref = CachedCalculator(ref_calc)
        self.settings = settings
        self.wall = 0.0

    def __call__(self, model) -> dict:
        from aceal.calculator import ACECalculator
        from aceal.fit import predict
        from aceal.model import ACEModel
        from aceal.validate.saddles import saddle_force_metrics
        from aceal.validate.suite import run_validation

        t0 = time.perf_counter()
        model = ACEModel(model.basis, model.coefficients, e0=model.e0,
                         repulsion=model.repulsion)   # mean model, no committee
        preds = predict(model, self.heldout)
        out: dict = {
            "thermal_energy_mae": float(np.mean([abs(p.energy - f.get_potential_energy())
                                                 / len(f) for p, f in
                                                 zip(preds, self.heldout, strict=True)])),
            "thermal_forces_mae": float(np.mean(np.concatenate(
                [np.abs(p.forces - f.get_forces()).ravel()
                 for p, f in zip(preds, self.heldout, strict=True)]))),
        }
        calc = ACECalculator(model)
        if self.paths:
            sm = saddle_force_metrics(self.paths, calc)
            r = sm["rare"]
            out.update(rare_mag_err_median=r["mag_err_median_eV_per_A"],
                       rare_mag_err_p95=r["mag_err_p95_eV_per_A"],
                       rare_angle_median=r["angle_median_deg"],
                       rare_angle_p95=r["angle_p95_deg"],
                       rare_forces_mae=r["forces_mae_eV_per_A"],
                       saddle_all_atoms=sm["all"])
        try:
            with np.errstate(all="ignore"):
                res = run_validation(calc, self.ref, list(self.cfg.elements),
                                     suites=("bulk", "defects"), settings=self.settings)
            rows = {f"{r['element']} {r['property']}": r for r in res["rows"]}
            rel = [r["rel_error"] for k, r in rows.items()
                   if not k.endswith(" E0") and math.isfinite(r["rel_error"])]
            out["property_rel_error_mean"] = float(np.mean(rel)) if rel else float("nan")
            out["properties_rel_error"] = {k: r["rel_error"] for k, r in rows.items()}
            fm = [r["abs_error"] for r in res["rows"] if r["property"] == "E_vac formation"]
            mm = [r["abs_error"] for r in res["rows"]
                  if r["property"] == "E_vac migration (NEB)"]
            out["vacancy_formation_abs_error_eV"] = float(np.mean(fm))
            out["vacancy_migration_abs_error_eV"] = float(np.mean(mm))
            if not hasattr(self, "reference_properties"):
                self.reference_properties = {k: r["reference"] for k, r in rows.items()}
        except Exception as err:  # a poor early model can break a relaxation or an E-V fit
            out.update({k: float("nan") for k in PROPERTY_METRICS})
            out["property_error"] = f"{type(err).__name__}: {err}"
        out["score_wall_s"] = round(time.perf_counter() - t0, 2)
        self.wall += time.perf_counter() - t0
        return out


# --------------------------------------------------------------------------- arms
def campaign_config(base_cfg, seed_offset, budget, quick, selection=None):
    """A copy of the config with the benchmark's overrides: seed, budget, no patience,
    the selection method if given (+ quick).  The config file is read once, at the
    start: a run is not disturbed by edits to the file while it runs."""
    import copy

    cfg = copy.deepcopy(base_cfg)
    cfg.seed = cfg.seed + seed_offset
    if selection is not None:
        cfg.selection.method = selection
    cfg.output.progress = False
    cfg.output.plots = False
    cfg.stopping.max_reference_calls = budget
    cfg.stopping.max_iterations = 10_000
    cfg.stopping.patience = None
    cfg.stopping.force_mae = None
    cfg.stopping.max_wall_time = None
    cfg.stopping.properties = {}
    if quick:
        cfg.initial_data.seeds_per_structure = 1
        cfg.md.walkers = 1
        cfg.md.steps_per_segment = min(cfg.md.steps_per_segment, 40)
        for spec in cfg.structures:   # thermal MD only (no relax/strain/NEB protocols)
            if hasattr(spec, "explore"):
                spec.explore = ["md"]
        cfg.validation.frames = min(cfg.validation.frames, 2)
        cfg.validation.steps_between = min(cfg.validation.steps_between, 20)
        order = min(int(cfg.basis.get("order", 3)), 3)
        cfg.basis = {**cfg.basis, "order": order, "max_degree": [10, 8, 6][:order]}
    return cfg


def run_loop(cfg, out: Path, budgets):
    """Run one campaign; returns its models at each budget and its cost record."""
    from aceal.loop.cli import run_campaign
    from aceal.loop.log import read_log
    from aceal.model import ACEModel

    t0 = time.perf_counter()
    run_campaign(cfg, out, quiet=True)
    wall = time.perf_counter() - t0
    recs = [r for r in read_log(out / cfg.output.log) if r["event"] == "iteration"]
    val_calls = max([int(r.get("validation_reference_calls", 0)) for r in recs] or [0])
    versions = [(int(r["reference_calls_total"]),
                 out / "models" / f"model-{r['iteration']:04d}.yaml", r) for r in recs]
    versions = [v for v in versions if v[1].is_file()]
    picked = {}
    for b in budgets:
        within = [v for v in versions if v[0] <= b]
        if within:
            calls, path, rec = within[-1]
            picked[b] = {"labelled_calls": calls, "model": ACEModel.load(path),
                         "md_steps": int(sum(r.get("md_steps", 0) for r in recs
                                             if r["iteration"] <= rec["iteration"])),
                         "rare_events_seen": int(sum(r.get("rare_events", 0) for r in recs
                                                     if r["iteration"] <= rec["iteration"]))}
    return picked, {"wall_s": round(wall, 1), "validation_reference_calls": val_calls,
                    "iterations": len(recs),
                    "labelled_calls": int(recs[-1]["reference_calls_total"]) if recs else 0}


class FrameFitter:
    """Fits with the campaign's basis, weights, prior and solver to any set of frames.

    Observations (design rows and targets) of each frame are computed once and cached,
    so a draw only sums normal equations: those :class:`aceal.loop.refit.Refitter`
    folds, without the active set.
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


# --------------------------------------------------------------------------- summary
def mean_curve(per_seed: list[dict], budgets) -> dict:
    """{budget: {metric: mean, metric_std, labelled_calls}} over seeds."""
    out = {}
    for b in budgets:
        rows = [s[b] for s in per_seed if b in s]
        if not rows:
            continue
        entry = {"labelled_calls": float(np.mean([r["labelled_calls"] for r in rows])),
                 "n_seeds": len(rows)}
        for m in METRICS:
            v = np.array([r.get(m, np.nan) for r in rows], float)
            entry[m] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            entry[m + "_std"] = float(np.nanstd(v)) if np.isfinite(v).sum() > 1 else 0.0
        for k in ("total_reference_calls",):
            if k in rows[0]:
                entry[k] = float(np.mean([r[k] for r in rows]))
        out[b] = entry
    return out


def calls_to_reach(curve: dict, metric: str, target: float):
    """(labelled calls, total calls) of the first budget whose mean is <= target."""
    for b in sorted(curve):
        v = curve[b][metric]
        if math.isfinite(v) and v <= target:
            return curve[b]["labelled_calls"], curve[b].get("total_reference_calls")
    return None, None


def plot(curves, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in METRICS if any(math.isfinite(c[b][m]) for c in curves.values()
                                        for b in c)]
    ncol = 4
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    style = {"campaign": ("tab:red", "o"), "random_selection": ("tab:blue", "s"),
             "aimd": ("tab:gray", "^")}
    for ax, m in zip(axes.flat, panels, strict=False):
        for arm, c in curves.items():
            bs = sorted(c)
            x = [c[b]["labelled_calls"] for b in bs]
            y = np.array([c[b][m] for b in bs])
            e = np.array([c[b][m + "_std"] for b in bs])
            col, mk = style[arm]
            ax.errorbar(x, y, yerr=e, color=col, marker=mk, capsize=2, label=arm)
        ax.set_title(f"{m} ({UNITS[m]})", fontsize=9)
        ax.set_xlabel("labelled reference calls")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def provenance(config_path) -> dict:
    """Git HEAD, a hash of the uncommitted changes to aceal/ and the config's sha256."""
    import hashlib
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout
        except Exception:
            return ""

    text = Path(config_path).read_bytes()
    diff = git("diff", "HEAD", "--", "aceal", "configs")
    return {"git_head": git("rev-parse", "HEAD").strip(),
            "uncommitted_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16]
            if diff else None,
            "uncommitted_files": git("status", "--short", "--", "aceal",
                                     "configs").split("\n")[:-1],
            "config_sha256": hashlib.sha256(text).hexdigest()[:16]}


def _say(msg):
    print(f"[bench_al {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    return x


# --------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "cu-vacancy-eam.yaml"))
    ap.add_argument("--budget", type=int, default=None,
                    help="labelled reference calls (default 64; --quick 24)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per arm (default 3; quick 1)")
    ap.add_argument("--aimd-draws", type=int, default=3, help="random draws per budget (AIMD)")
    ap.add_argument("--saddle-copies", type=int, default=4,
                    help="thermally displaced copies of each saddle image")
    ap.add_argument("--saddle-sigma", type=float, default=0.05,
                    help="their displacement, Å")
    ap.add_argument("--quick", action="store_true", help="CI smoke test: tiny, numbers meaningless")
    ap.add_argument("--plot", default=None, help="PNG path (default bench_al-<config>.png)")
    ap.add_argument("--out", default=None, help="keep the campaigns under this directory")
    ap.add_argument("--floor-basis", action="append", default=[], metavar="JSON",
                    help='also fit every AIMD frame with the basis section updated by '
                         'this JSON object, e.g. \'{"r_cut": 7.5}\' (repeatable)')
    args = ap.parse_args(argv)

    from aceal.descriptors import DesignTables
    from aceal.fit.fitter import build_basis
    from aceal.loop.config import load_campaign_config
    from aceal.loop.structures import build_structures
    from aceal.model import ACEModel
    from aceal.reference import make_calculator
    from aceal.validate.saddles import add_displaced_frames, hop_paths
    from aceal.validate.suite import QUICK_SETTINGS

    t_start = time.perf_counter()
    quick = args.quick
    budget = args.budget or (24 if quick else 64)
    n_seeds = args.seeds or (1 if quick else 3)
    budgets = sorted({b for b in BUDGETS if b <= budget} | {budget})
    if quick:
        budgets = [budget]
    base_cfg = load_campaign_config(args.config)   # read once (see campaign_config)
    prov = provenance(args.config)
    prov["config_text"] = Path(args.config).read_text()
    spec, base = base_cfg.reference.calculator, base_cfg.base_dir

    def factory():
        return make_calculator(spec, base)

    structures = build_structures(base_cfg.structures,
                                  np.random.default_rng([base_cfg.seed, 1]))
    timing: dict = {}
    # held-out thermal frames and saddle frames (the reference, never in any training set)
    t0 = time.perf_counter()
    md_steps = 100 if quick else 600
    heldout, heldout_calls = reference_md(structures, factory, [base_cfg.validation.temperature],
                                          md_steps, 50, 100 if quick else 200, seed=12345,
                                          timestep=base_cfg.md.timestep)
    timing["heldout_md_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    paths, hop_notes = hop_paths(structures, perfect_lattices(base_cfg, structures), factory(),
                                 n_images=3 if quick else 5)
    add_displaced_frames(paths, factory(), copies=args.saddle_copies, sigma=args.saddle_sigma,
                         seed=base_cfg.seed)
    timing["reference_neb_s"] = round(time.perf_counter() - t0, 1)
    scorer = Scorer(base_cfg, heldout, paths, factory(), QUICK_SETTINGS)

    tmp = tempfile.TemporaryDirectory()
    root = Path(args.out) if args.out else Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    per_seed: dict = {"campaign": [], "random_selection": [], "aimd": []}
    runs: dict = {"campaign": [], "random_selection": []}
    e0 = basis = None
    md_steps_at: dict = {}
    for k in range(n_seeds):   # interleaved: every finished seed has both loop arms
        for arm in ("campaign", "random_selection"):
            t0 = time.perf_counter()
            cfg = campaign_config(base_cfg, k, budget, quick,
                                  None if arm == "campaign" else "random")
            out = root / f"{arm}-{k}"
            cache = out / "bench_scores.json"
            if cache.is_file():   # a finished run of an earlier invocation (--out)
                saved = json.loads(cache.read_text())
                scores = {int(b): v for b, v in saved["scores"].items()}
                info = saved["info"]
                _say(f"{arm} seed {k}: reused {cache}")
            else:
                picked, info = run_loop(cfg, out, budgets)
                _say(f"{arm} seed {k}: {info}")
                scores = {}
                for b, p in picked.items():
                    s = scorer(p["model"])
                    s.update(labelled_calls=p["labelled_calls"], md_steps=p["md_steps"],
                             rare_events_seen=p["rare_events_seen"],
                             total_reference_calls=p["labelled_calls"]
                             + info["validation_reference_calls"])
                    scores[b] = s
                info["score_wall_s"] = round(sum(s["score_wall_s"] for s in scores.values()), 1)
                cache.write_text(json.dumps(_clean({"scores": scores, "info": info})))
                _say(f"{arm} seed {k}: scored")
            if arm == "campaign":
                for b, s in scores.items():
                    md_steps_at.setdefault(b, []).append(s["md_steps"])
            per_seed[arm].append(scores)
            runs[arm].append(info)
            if e0 is None:
                m = ACEModel.load(out / "model.yaml")
                e0 = dict(zip(cfg.elements, [float(x) for x in m.e0], strict=True))
                basis = m.basis
            timing[f"{arm}_s"] = round(timing.get(f"{arm}_s", 0.0) + time.perf_counter() - t0, 1)

    _say("loop arms scored")
    # the AIMD route: reference MD as long as the campaign's walkers ran, random frames
    t0 = time.perf_counter()
    cfg0 = campaign_config(base_cfg, 0, budget, quick)
    n_struct, temps = len(structures), list(cfg0.md.temperature)
    walker_steps = float(np.mean(md_steps_at[max(md_steps_at)])) if md_steps_at else 1000.0
    stride = cfg0.md.sample_interval
    per_run = max(stride * 4, int(math.ceil(walker_steps / (n_struct * len(temps)) / stride))
                  * stride)
    burn = 50 if quick else 100
    pool_file = root / f"aimd-pool-{per_run}.xyz"
    if pool_file.is_file():
        from aceal import aseio

        pool = aseio.read(str(pool_file), index=":")
        aimd_calls = len(structures) * len(temps) * (burn + per_run)
    else:
        pool, aimd_calls = reference_md(structures, factory, temps, per_run, stride, burn,
                                        seed=[base_cfg.seed, 777], timestep=cfg0.md.timestep,
                                        friction=cfg0.md.friction)
        if args.out:
            from aceal import aseio

            aseio.write(str(pool_file), pool)
    timing["aimd_md_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    if basis is None:
        basis, _ = build_basis(cfg0.basis, cfg0.elements, structures)
    fitter = FrameFitter(basis, DesignTables(basis), cfg0.fit, e0, root / "aimd-fit")
    rng = np.random.default_rng([base_cfg.seed, 2024])
    n_draws = 1 if quick else args.aimd_draws
    for d in range(n_draws):
        scores = {}
        for b in budgets:
            pick = rng.choice(len(pool), size=min(b, len(pool)), replace=False)
            model = fitter.fit([(int(i), pool[int(i)]) for i in pick], d)
            s = scorer(model)
            s.update(labelled_calls=len(pick), total_reference_calls=aimd_calls)
            scores[b] = s
        per_seed["aimd"].append(scores)
    # the basis's floor: the same fit to every frame of the pool (what more data of the
    # held-out distribution alone can buy with this basis and cutoff)
    floors = []
    for k, override in enumerate([None] + [json.loads(t) for t in args.floor_basis]):
        f = fitter
        if override is not None:
            other, _ = build_basis({**cfg0.basis, **override}, cfg0.elements, structures)
            f = FrameFitter(other, DesignTables(other), cfg0.fit, e0, root / f"aimd-fit-{k}")
            _say(f"floor with basis {override}: {len(other)} functions")
        score = scorer(f.fit(list(enumerate(pool)), 0))
        score.update(labelled_calls=len(pool), basis_functions=len(f.refit.basis))
        if override is not None:
            score["basis_update"] = override
        floors.append(score)
    full_pool = floors.pop(0)
    timing["aimd_fit_and_score_s"] = round(time.perf_counter() - t0, 1)

    curves = {arm: mean_curve(per_seed[arm], budgets) for arm in ARMS}
    aimd_final = curves["aimd"][max(curves["aimd"])]
    reach: dict = {}
    for m in METRICS:
        target = aimd_final[m]
        reach[m] = {"aimd_final": target}
        for arm in ("campaign", "random_selection"):
            lab, tot = calls_to_reach(curves[arm], m, target) if math.isfinite(target) \
                else (None, None)
            reach[m][arm] = {"labelled_calls": lab, "total_reference_calls": tot}
    # the criteria
    final_lab = aimd_final["labelled_calls"]
    checks: dict = {}
    for m in (*RARE_METRICS, *PROPERTY_METRICS):
        lab, tot = reach[m]["campaign"]["labelled_calls"], reach[m]["campaign"][
            "total_reference_calls"]
        checks[m] = {
            "campaign_reach_labelled": lab, "campaign_reach_total": tot,
            "le_third_labelled": lab is not None and lab <= final_lab / 3,
            "le_twentieth_total": tot is not None and tot <= aimd_calls / 20,
            "le_twentieth_total_without_validation_md":
                lab is not None and lab <= aimd_calls / 20,
        }
    beats = {}
    for m in RARE_METRICS:
        rows = {b: (curves["campaign"][b][m], curves["random_selection"][b][m])
                for b in budgets if b >= 20 and b in curves["campaign"]
                and b in curves["random_selection"]}
        beats[m] = {"per_budget": {b: bool(c < r) for b, (c, r) in rows.items()},
                    "all": bool(rows) and all(c < r for c, r in rows.values())}
    plot_path = Path(args.plot) if args.plot else Path(f"bench_al-{Path(args.config).stem}.png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, plot_path, f"{Path(args.config).name}: mean ± std over "
         f"{n_seeds} seeds (AIMD: {n_draws} draws)")
    timing["scoring_s"] = round(scorer.wall, 1)
    timing["total_s"] = round(time.perf_counter() - t_start, 1)
    result = {
        "benchmark": "bench_al",
        "config": str(args.config),
        "quick": quick,
        "budgets": budgets,
        "seeds": n_seeds,
        "heldout": {"thermal_frames": len(heldout),
                    "temperature_K": base_cfg.validation.temperature,
                    "reference_calls": heldout_calls,
                    "saddle_paths": [{"kind": p.kind, "structure": p.structure,
                                      "barrier_eV": p.barrier_eV, "converged": p.converged,
                                      "saddle_frames": len(p.saddle_frames),
                                      "rare_atoms": len(p.rare_atoms),
                                      "reference_calls": p.reference_calls}
                                     for p in paths],
                    "hop_notes": hop_notes},
        "aimd": {"md_steps_per_structure_and_temperature": per_run, "burn_in": burn,
                 "temperatures_K": temps, "pool_frames": len(pool),
                 "total_reference_calls": aimd_calls,
                 "campaign_walker_md_steps": walker_steps, "draws": n_draws,
                 "full_pool": full_pool, "full_pool_other_bases": floors},
        "runs": runs,
        "curves": curves,
        "per_seed": per_seed,
        "calls_to_reach_aimd_final": reach,
        "targets": {"aimd_final_labelled_calls": final_lab,
                    "aimd_total_reference_calls": aimd_calls,
                    "reach": checks, "beats_random_selection_at_budgets_ge_20": beats},
        "reference_properties": getattr(scorer, "reference_properties", None),
        "plot": str(plot_path),
        "provenance": prov,
        "wall_s": timing,
    }
    result = _clean(result)
    print(json.dumps(result))
    tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
