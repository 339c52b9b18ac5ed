"""The campaign: iteration loop, crash-safe state and restart.

Iteration 0 imports the initial data, labels the seed configurations, builds the held-out
validation set and fits the first model.  Iteration ``i >= 1``:

1. the walkers run one MD segment each with model ``i-1`` (:mod:`~aceal.loop.walker`),
   beside them the exploration protocols (:mod:`~aceal.loop.explore`: relaxations,
   strains, NEB of built vacancies and of the hops the walkers saw, few-body clusters);
2. a batch is chosen from all their candidates (:mod:`~aceal.loop.selection`);
3. the batch is written to the state file (phase ``labelling``) and labelled on all ranks
   (:mod:`~aceal.loop.oracle`); successes are appended to the store in one commit,
   failures recorded with ``add_failure``;
4. the new rows are folded into the normal equations, the model re-solved with a
   committee (:mod:`~aceal.loop.refit`), saved (file and ``store.add_model``) and
   validated;
5. the state file (phase ``done``) records the iteration, the walkers, the model bundle
   and the RNG state.

Restart (the same command after a crash or ``kill -9``): the state file is written
atomically *after* the store commit it describes, and labelling skips every pending
structure already in the store (or its failures) for that iteration, identified by a
hash of its atomic numbers, positions and cell.  So nothing committed is lost and no
structure is labelled twice; the normal equations fold in exactly the store entries they
do not hold yet.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from aceal.errors import AcealInputError
from aceal.jsonable import to_jsonable
from aceal.loop.config import CampaignConfig
from aceal.loop.coordinator import Engine
from aceal.loop.explore import exploration_jobs, fewbody_clusters, isolated_atoms
from aceal.loop.faults import crash_point
from aceal.loop.log import CampaignLog, Progress
from aceal.loop.refit import Refitter
from aceal.loop.selection import select_candidates
from aceal.loop.state import STATE_FILE, load_state, save_state
from aceal.loop.structures import build_structures, seed_configurations
from aceal.loop.walker import ModelBundle, maxwell_boltzmann, new_walker
from aceal.settings import dump
from aceal.store.atomic import write_atomic

__all__ = ["Campaign", "config_hash", "publish_latest", "STATE_FILE"]

#: version of the state's contents (the file format has its own, in aceal.loop.state)
STATE_VERSION = 1


def config_hash(atoms: Atoms) -> str:
    """Identity of a structure: SHA-1 of atomic numbers, positions and cell (bit exact)."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
    return h.hexdigest()


def _fingerprint(cfg: CampaignConfig) -> str:
    """What must not change between runs of one campaign (it defines the fit's rows)."""
    keep = {k: getattr(cfg, k) for k in ("elements", "basis", "e0", "repulsion")}
    keep["weights"] = cfg.fit.weights
    return json.dumps(to_jsonable(keep, other=dump), sort_keys=True)


def publish_latest(directory: Path, outputs: dict[str, Path | None]) -> list[str]:
    """Copy each output to its latest name in ``directory`` (``{latest: source}``).

    A latest name whose source is ``None`` (this model has no such file) loses its old
    copy, which belonged to an earlier model: a ``model.asi`` beside a newer
    ``model.yaml`` would grade with a stale active set.  Returns the names removed.
    """
    removed = []
    for latest, src in outputs.items():
        target = directory / latest
        if src is not None:
            write_atomic(target, src.read_bytes(), durable=False)
        elif target.exists():
            target.unlink()
            removed.append(latest)
    return removed


class Campaign:
    """Rank 0's campaign driver.

    Parameters
    ----------
    cfg
        Validated config (:func:`aceal.loop.config.load_campaign_config`).
    outdir
        Output directory (store, models, log, state, plots).
    engine
        The :class:`~aceal.loop.coordinator.Engine` (MPI or serial).
    basis, tables
        Campaign basis and its design tables.
    progress
        Terminal progress printer.
    """

    def __init__(self, cfg: CampaignConfig, outdir: Path, engine: Engine, basis, tables,
                 progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.out = Path(outdir)
        self.engine = engine
        self.basis = basis
        self.tables = tables
        self.progress = progress or Progress(False)
        self.log = CampaignLog(self.out / cfg.output.log)
        self.state_path = self.out / STATE_FILE
        self.t_run = time.perf_counter()
        self.store = None
        self.state: dict[str, Any] = {}
        self.rng: np.random.Generator | None = None
        self.structures: list[Atoms] = []
        self.protocols: list[list[str]] = []
        self.validation: list[Atoms] = []
        self.refit: Refitter | None = None
        self.repulsion = None
        self.baseline = None

    # ------------------------------------------------------------------ state file
    def _save_state(self) -> None:
        self.state["wall_time"] = self.state.get("wall_time_before", 0.0) + (
            time.perf_counter() - self.t_run)
        self.state["rng"] = self.rng.bit_generator.state
        save_state(self.out, self.state)

    def _load_state(self) -> bool:
        state = load_state(self.out)
        if state is None:
            return False
        if state.get("version") != STATE_VERSION:
            raise AcealInputError(f"{self.state_path}: campaign state version "
                                  f"{state.get('version')!r}, this aceal resumes version "
                                  f"{STATE_VERSION}; use another output directory")
        if state.get("fingerprint") != _fingerprint(self.cfg):
            raise AcealInputError(
                f"{self.out}: holds a campaign with different elements, basis, e0, repulsion "
                "or fit weights; use another output directory")
        self.state = state
        self.state["wall_time_before"] = state.get("wall_time", 0.0)
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        return True

    # ------------------------------------------------------------------ helpers
    def _temperature(self, iteration: int) -> float:
        temps = self.cfg.md.temperature
        return temps[min(max(iteration - 1, 0), len(temps) - 1)]

    def _done(self, iteration: int) -> dict[str, tuple[int, bool]]:
        """Structures of ``iteration`` already in the store: hash -> (attempts, failed)."""
        done: dict[str, tuple[int, bool]] = {}
        idx = self.store.indices(iteration=iteration)
        for a in (self.store[idx] if len(idx) else []):
            sel = a.info.get("selection") or {}
            done[config_hash(a)] = (int(sel.get("attempts", 1)), False)
        for f in self.store.failures():
            if f.iteration == iteration:
                done[config_hash(f.atoms)] = (self.cfg.reference.retries + 1, True)
        return done

    def _label_pending(self, iteration: int, timings: dict) -> dict:
        """Label the pending structures not yet in the store; one commit for the successes."""
        pending = self.state["pending"]
        done = self._done(iteration)
        todo = [p for p in pending if p["hash"] not in done]
        # committed before a crash that hit before the state file caught up: count them
        for p in pending:
            if p["hash"] in done:
                attempts, failed = done[p["hash"]]
                self.state["reference_calls"] += attempts
                self.state["failures"] += int(failed)
        t0 = time.perf_counter()
        results = self.engine.label([p["atoms"] for p in todo],
                                    f"labelling of iteration {iteration}") if todo else []
        crash_point(f"labelled-{iteration}")
        timings["labelling"] = time.perf_counter() - t0
        timings["reference"] = float(sum(r.wall_time for r in results))
        calls = int(sum(r.attempts for r in results))
        ok, failed = [], []
        for p, r in zip(todo, results, strict=True):
            if r.ok:
                a = r.atoms
                a.info.update({"source": p["source"], "reason": p["reason"],
                               "rank": p.get("rank", 0), "wall_time": r.wall_time,
                               "selection": {**p.get("selection", {}),
                                             "attempts": r.attempts}})
                if "config_type" in p["atoms"].info:
                    a.info["config_type"] = p["atoms"].info["config_type"]
                ok.append(a)
            else:
                failed.append((p, r))
        t0 = time.perf_counter()
        if ok:
            self.store.append(ok, iteration=iteration, calculator=self.engine.ctx.oracle.name)
        for p, r in failed:
            self.store.add_failure(p["atoms"], r.reason, iteration=iteration,
                                   source=p["source"], rank=p.get("rank", 0),
                                   calculator=self.engine.ctx.oracle.name)
        crash_point(f"committed-{iteration}")
        timings["store"] = time.perf_counter() - t0
        self.state["reference_calls"] += calls
        self.state["failures"] += len(failed)
        reasons: dict[str, int] = {}
        for _, r in failed:
            key = r.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        self.state["pending"] = []
        return {"labelled": len(ok), "failed": len(failed), "reference_calls": calls,
                "failure_reasons": reasons, "skipped_already_labelled": len(pending) - len(todo)}

    # ------------------------------------------------------------------ setup
    def _import_initial(self) -> int:
        from aceal.store import read_configurations

        init = self.cfg.initial_data
        if len(self.store.indices(source="import")):
            return 0
        images = []
        for path in ([init.store] if init.store else []) + (init.xyz or []):
            images += read_configurations(path)
        images = [a for a in images if a.calc is not None or "energy" in a.info]
        if images:
            self.store.append(images, source="import", reason="import", iteration=0,
                              require=("energy",))
        return len(images)

    def _missing_isolated_atoms(self) -> list[Atoms]:
        """Single atoms to label for ``e0.method: isolated``: the elements without a
        single-atom configuration in the imported data."""
        idx = self.store.indices(source="import")
        have = {a.get_chemical_symbols()[0] for a in (self.store[idx] if len(idx) else [])
                if len(a) == 1}
        return [a for a in isolated_atoms(list(self.basis.elements), self.basis.r_cut)
                if a.get_chemical_symbols()[0] not in have]

    def _e0(self) -> dict[str, float]:
        """E0 from the initial data by the ``aceal fit`` rule of ``e0.method``."""
        from aceal.fit import get_labels
        from aceal.fit.fitter import Dataset, reference_energies

        images = self.store[self.store.indices()] if self.cfg.e0.method != "given" else []
        data = Dataset(images, [get_labels(a) for a in images])
        if self.cfg.e0.method != "given" and not any(lab.energy is not None
                                                    for lab in data.labels):
            raise AcealInputError("initial_data: no labelled configuration with an energy "
                                  "to fit E0 from")
        return reference_energies(self.cfg.e0, data, self.cfg.elements, self.baseline)

    def _validation_set(self) -> list[Atoms]:
        """Held-out frames from MD with the reference (or the configured file)."""
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.md.langevin import Langevin
        from ase.parallel import DummyMPI
        from ase.units import fs

        from aceal.store import read_configurations, write_xyz

        vcfg = self.cfg.validation
        if vcfg.file:
            return read_configurations(vcfg.file)
        path = self.out / "validation.xyz"
        if path.is_file():
            return read_configurations(path)
        if vcfg.frames == 0:
            return []
        rng = np.random.default_rng([self.cfg.seed, 7])
        oracle = self.engine.ctx.oracle
        frames, calls, failures = [], 0, 0
        n_struct = len(self.structures)
        per = [vcfg.frames // n_struct + (k < vcfg.frames % n_struct)
               for k in range(n_struct)]
        self.progress.say(f"validation set: {vcfg.frames} frames from "
                          f"{vcfg.frames * vcfg.steps_between} MD steps with the reference")
        for k, (s, n) in enumerate(zip(self.structures, per, strict=True)):
            if n == 0:
                continue
            a = Atoms(s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc)
            maxwell_boltzmann(a, 2 * vcfg.temperature, rng)
            good = (a.positions.copy(), a.get_momenta())
            done, tries = 0, 0
            while done < n:
                # a failing reference call (exception, NaN, absurd force) restarts the MD
                # from the last frame with a fresh calculator, up to the oracle's retries
                a.calc = oracle.factory()
                dyn = Langevin(a, vcfg.timestep * fs, temperature_K=vcfg.temperature,
                               friction=0.02 / fs, fixcm=False, rng=rng, comm=DummyMPI())
                try:
                    while done < n:
                        dyn.run(vcfg.steps_between)
                        calls += vcfg.steps_between
                        res = {"energy": float(a.get_potential_energy()),
                               "forces": np.array(a.get_forces())}
                        if a.pbc.all():
                            res["stress"] = np.array(a.get_stress())
                        oracle.check(res["energy"], res["forces"], res.get("stress"), len(a))
                        f = Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
                        f.calc = SinglePointCalculator(f, **res)
                        f.info["config_type"] = s.info.get("config_type", "validation")
                        frames.append(f)
                        crash_point(f"validation-frame-{len(frames)}")
                        done += 1
                        tries = 0  # counts consecutive failures
                        good = (a.positions.copy(), a.get_momenta())
                except KeyboardInterrupt:
                    raise
                except Exception as err:  # the reference code may raise anything
                    failures += 1
                    tries += 1
                    msg = " ".join(f"{type(err).__name__}: {err}".split())[:200]
                    if tries > oracle.retries + 1:
                        self.progress.say(f"validation set: structure {k} given up after "
                                          f"{tries} failed reference calls ({msg})")
                        break
                    self.progress.say(f"validation set: reference failed ({msg}); MD "
                                      "restarts from the last good frame")
                    a.positions = good[0]
                    a.set_momenta(good[1])
        if failures:
            self.state["validation_failures"] = failures
        write_xyz(path, frames, overwrite=True)
        self.state["validation_reference_calls"] = calls
        return read_configurations(path)   # what a resumed run reads

    def _validate(self, model) -> dict:
        from aceal.fit import error_metrics, get_labels, predict

        if not self.validation:
            return {}
        labels = [get_labels(a) for a in self.validation]
        preds = predict(model, self.validation)
        m = error_metrics(labels, preds, [len(a) for a in self.validation])
        return {k: m[k] for k in ("energy_mae", "energy_rmse", "forces_mae", "forces_rmse",
                                  "stress_mae")}

    # ------------------------------------------------------------------ fit
    def _fit(self, iteration: int, timings: dict) -> tuple[dict, dict]:
        from aceal.grade import ExtrapolationGrader
        from aceal.model import ACEModel

        t0 = time.perf_counter()
        n = len(self.store)
        self.refit.catch_up(self.store)
        post, committee = self.refit.solve(self.rng)
        crash_point(f"fit-{iteration}")
        timings["fit"] = time.perf_counter() - t0
        meta = {"campaign_iteration": iteration, "n_train": n, "lambda": post.lam,
                "effective_parameters": post.gamma}
        model = ACEModel(self.basis, post.mean, e0=self.state["e0"], repulsion=self.repulsion,
                         committee=committee, metadata=meta)
        t0 = time.perf_counter()
        val = self._validate(model)
        if self.cfg.fit.calibrate_committee and self.validation:
            from aceal.uncertainty.calibration import committee_scale, rescale_committee

            scale = committee_scale(model, self.validation)
            if np.isfinite(scale):
                committee = rescale_committee(post.mean, committee, scale)
                meta["committee_scale"] = scale
                val["committee_scale"] = scale
                model = ACEModel(self.basis, post.mean, e0=self.state["e0"],
                                 repulsion=self.repulsion, committee=committee, metadata=meta)
        timings["validation"] = time.perf_counter() - t0
        bundle = self.refit.bundle(iteration, post, committee, self.repulsion)
        t0 = time.perf_counter()
        fit_errors = self.refit.training_errors(post.mean)
        mdir = self.out / "models"
        mdir.mkdir(exist_ok=True)
        path = mdir / f"model-{iteration:04d}.yaml"
        model.save(path)
        asi = path.with_suffix(".asi.npz")
        grader = ExtrapolationGrader(self.basis, bundle.inverses)
        grader.save(asi)
        outputs = {"model.yaml": path, "model.asi.npz": asi, "model.asi": None}
        pace_asi = path.with_suffix(".asi")  # pacemaker's format, for LAMMPS
        try:
            grader.save(pace_asi)
            outputs["model.asi"] = pace_asi
        except AcealInputError as err:  # a rank-deficient active set has no .asi form
            if not getattr(self, "_asi_note_written", False):
                self.log.write("note", iteration=iteration,
                               message=f"pacemaker .asi not written: {err}")
                self._asi_note_written = True
        for name in publish_latest(self.out, outputs):
            self.log.write("note", iteration=iteration,
                           message=f"{name} removed: {path.name} has none, and the old copy "
                                   "belongs to an earlier model")
        if not any(m.iteration == iteration for m in self.store.models()):
            self.store.add_model(path.read_text(), iteration=iteration,
                                 metrics={"train": fit_errors, "validation": val,
                                          "n_train": n})
        crash_point(f"saved-{iteration}")
        timings["save"] = time.perf_counter() - t0
        self.state["bundle"] = bundle
        entry = {"iteration": iteration, "reference_calls": self.state["reference_calls"],
                 **{f"validation_{k}": v for k, v in val.items()}}
        if self.cfg.stopping.properties:
            t0 = time.perf_counter()
            entry["properties"] = self._properties(model)
            timings["properties"] = time.perf_counter() - t0
        self.state["history"].append(entry)
        return fit_errors, val

    def _properties(self, model) -> dict:
        """Committee spread of the ``stopping.properties`` (QUICK validation settings)."""
        from aceal.calculator import ACECalculator
        from aceal.loop.walker import mean_model
        from aceal.validate.committee import committee_properties
        from aceal.validate.crystal import element_structure
        from aceal.validate.suite import QUICK_SETTINGS

        cubic = []
        for el in self.cfg.elements:
            try:
                element_structure(el)
                cubic.append(el)
            except AcealInputError:
                continue
        if not cubic:
            raise AcealInputError("stopping.properties: needs an element with a cubic "
                                  f"ground state; elements are {self.cfg.elements}")
        threads = self.engine.ctx.threads
        members = [ACECalculator(m, num_threads=threads) for m in model.committee_models()]
        return committee_properties(ACECalculator(mean_model(model), num_threads=threads),
                                    members, cubic, list(self.cfg.stopping.properties),
                                    QUICK_SETTINGS)

    # ------------------------------------------------------------------ phases
    def _start(self) -> bool:
        from aceal.fit.fitter import make_repulsion

        self.rng = np.random.default_rng(self.cfg.seed)
        self.structures = build_structures(self.cfg.structures,
                                           np.random.default_rng([self.cfg.seed, 1]))
        self.protocols = [s.protocols() for s in self.cfg.structures]
        self.repulsion, self.baseline = make_repulsion(self.cfg.repulsion, self.basis)
        resumed = self._load_state()
        if not resumed:
            self.state = {"version": STATE_VERSION, "fingerprint": _fingerprint(self.cfg),
                          "iteration": 0, "phase": "new", "pending": [], "walkers": [],
                          "reference_calls": 0, "failures": 0, "history": [], "e0": None,
                          "bundle": None, "validation_reference_calls": 0,
                          "wall_time_before": 0.0, "stop_reason": None}
        self.refit = None
        return resumed

    def _iteration0(self) -> None:
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        if self.state["phase"] == "new":
            n_import = self._import_initial()
            init = self.cfg.initial_data
            seeds = seed_configurations(self.structures, init.seeds_per_structure,
                                        init.seed_rattle, init.seed_strain,
                                        np.random.default_rng([self.cfg.seed, 2]))
            fewbody = self.cfg.exploration.fewbody
            if fewbody.enabled and fewbody.seed_dimers:   # cheap for any reference code
                seeds += [a for a, _ in fewbody_clusters(
                    list(self.basis.elements), fewbody, self.basis.r_cut,
                    np.random.default_rng([self.cfg.seed, 3])) if len(a) == 2]
            if self.cfg.e0.method == "isolated":
                seeds += self._missing_isolated_atoms()
            self.state["pending"] = [
                {"atoms": a, "hash": config_hash(a), "source": "seed", "reason": "seed",
                 "rank": 0, "selection": {}} for a in seeds]
            self.state["phase"] = "labelling"
            self.state["imported"] = n_import
            self._save_state()
            self.progress.say(f"imported {n_import} configurations; labelling "
                              f"{len(seeds)} seed configurations")
        lab = self._label_pending(0, timings)
        if len(self.store) == 0:
            raise AcealInputError("initial data: no configuration could be labelled "
                                  f"({lab['failed']} reference failures, see the store's "
                                  "failures)")
        self._save_state()
        t0 = time.perf_counter()
        self.validation = self._validation_set()
        timings["validation_set"] = time.perf_counter() - t0
        self.state["e0"] = self._e0()
        self._make_refitter()
        fit_errors, val = self._fit(0, timings)
        temp = self._temperature(1)
        md_structures = [k for k, p in enumerate(self.protocols) if "md" in p]
        self.state["walkers"] = [
            new_walker(w, self.structures[k], temp, self.rng, structure=k)
            for w, k in ((w, md_structures[w % len(md_structures)])
                         for w in range(self.cfg.md.walkers))]
        timings["total"] = time.perf_counter() - t_all
        rec = self.log.write("iteration", iteration=0, model_version=0, candidates=0,
                             selected=0, n_train=len(self.store), **lab,
                             reference_calls_total=self.state["reference_calls"],
                             validation_reference_calls=self.state["validation_reference_calls"],
                             validation_failures=self.state.get("validation_failures", 0),
                             fit=fit_errors, validation=val, timings=timings, trace=[],
                             properties=self.state["history"][-1].get("properties"))
        self.state["phase"] = "done"
        self._save_state()
        self.progress.iteration(rec, self.cfg.stopping.max_iterations)

    def _make_refitter(self) -> None:
        self.refit = Refitter(self.basis, self.tables, self.cfg.fit, self.state["e0"],
                              self.out, baseline=self.baseline,
                              num_threads=self.engine.ctx.threads)
        self.refit.load()

    def _stop_reason(self) -> str | None:
        st, s = self.cfg.stopping, self.state
        if s["iteration"] >= st.max_iterations:
            return f"max_iterations ({st.max_iterations}) reached"
        if st.max_reference_calls and s["reference_calls"] >= st.max_reference_calls:
            return f"reference-call budget ({st.max_reference_calls}) used"
        wall = s.get("wall_time_before", 0.0) + time.perf_counter() - self.t_run
        if st.max_wall_time and wall >= st.max_wall_time:
            return f"wall time {wall:.0f} s >= {st.max_wall_time:g} s"
        props = s["history"][-1].get("properties") if s["history"] else None
        if st.properties and props:
            worst = {n: max(props[el][n]["sigma"] for el in props) for n in st.properties}
            if all(worst[n] <= tol for n, tol in st.properties.items()):
                return "committee spread within tolerance: " + ", ".join(
                    f"{n} {worst[n]:.3g} <= {tol:g}" for n, tol in st.properties.items())
        hist = [h.get("validation_forces_mae") for h in s["history"]]
        hist = [h for h in hist if h is not None]
        if st.force_mae and hist and hist[-1] <= st.force_mae:
            return f"validation force MAE {hist[-1]:.4f} <= {st.force_mae:g} eV/Å"
        p = st.patience
        if p and len(hist) > p and min(hist[-p:]) > min(hist[:-p]) * (1 - st.rtol):
            return (f"validation force MAE converged (no improvement > {st.rtol:.0%} in "
                    f"{p} iterations)")
        return None

    def _iteration(self, it: int) -> None:
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        extra: dict[str, Any] = {}
        if self.state["phase"] == "done":
            bundle: ModelBundle = self.state["bundle"]
            temp = self._temperature(it)
            walkers = self.state["walkers"]
            tasks = walkers + exploration_jobs(self.structures, self.protocols,
                                               self.cfg.exploration, it,
                                               self.state.get("hops", []))
            seeds = self.rng.integers(0, 2**63 - 1, size=len(tasks))
            t0 = time.perf_counter()
            results = self.engine.walk(bundle, [(w, temp, int(sd))
                                                for w, sd in zip(tasks, seeds, strict=True)],
                                       f"MD and exploration of iteration {it}")
            crash_point(f"md-{it}")
            timings["md"] = time.perf_counter() - t0
            ranks = self.engine.walker_ranks
            cands, trace = [], []
            for k, r in enumerate(results):
                for c in r.candidates:
                    cands.append((c, ranks[k % len(ranks)]))
                step = max(1, len(r.trace) // 20)
                if r.state is not None:
                    trace += [[r.state.walker_id, *row] for row in r.trace[::step]]
            md_results, protocol_results = results[:len(walkers)], results[len(walkers):]
            self.state["walkers"] = [r.state for r in md_results]
            self.state["hops"] = [[r.state.structure, before, after] for r in md_results
                                  for before, after in r.hops
                                  ][:self.cfg.exploration.neb.max_hops]
            t0 = time.perf_counter()
            budget = self.cfg.selection.batch_size
            if self.cfg.stopping.max_reference_calls:
                budget = min(budget, self.cfg.stopping.max_reference_calls
                             - self.state["reference_calls"])
            method = self.cfg.selection.method
            info = {}
            if method == "information" and len(cands) > budget:
                info = {"posterior": self.refit.posterior(), "weights": self.refit.weights}
            chosen, why = select_candidates([c for c, _ in cands], budget, method,
                                            self.refit.config_means,
                                            self.cfg.selection.rare_event_priority,
                                            self.cfg.selection.priority_share,
                                            protocol_share=self.cfg.exploration.share,
                                            rng=np.random.default_rng(
                                                [self.cfg.seed, it, 5]), rotation=it,
                                            **info)
            timings["selection"] = time.perf_counter() - t0
            pending = []
            for i, w in zip(chosen, why, strict=True):
                c, rank = cands[i]
                pending.append({
                    "atoms": c.atoms, "hash": config_hash(c.atoms),
                    "source": "walker" if c.walker >= 0 else "explore",
                    "reason": c.reason, "rank": int(rank),
                    "selection": {"uncertainty": c.signals["force_std_max"],
                                  "energy_std": c.signals["energy_std"],
                                  "force_std_max": c.signals["force_std_max"],
                                  "gamma_max": c.signals["gamma_max"],
                                  "indicator": 1.0 if c.reason == "rare_event" else 0.0,
                                  "walker": c.walker, "md_time_fs": c.md_time,
                                  "detail": c.detail, "picked": w, "temperature_K": temp}})
            by_reason: dict[str, int] = {}
            for c, _ in cands:
                by_reason[c.reason] = by_reason.get(c.reason, 0) + 1
            sel_reason: dict[str, int] = {}
            for p in pending:
                sel_reason[p["reason"]] = sel_reason.get(p["reason"], 0) + 1
            extra = {"candidates": len(cands), "candidates_by_reason": by_reason,
                     "selected": len(pending), "selected_by_reason": sel_reason,
                     "temperature_K": temp, "trace": trace,
                     "blowups": [r.blowup for r in results if r.blowup],
                     "md_steps": int(sum(r.steps for r in md_results)),
                     "protocol_frames": int(sum(r.steps for r in protocol_results)),
                     "rare_events": int(sum(r.events for r in md_results)),
                     "rare_events_discarded": int(sum(r.discarded for r in md_results))}
            self.state.update(iteration=it, phase="labelling", pending=pending, md_log=extra)
            self._save_state()
        else:  # resumed in the middle of labelling: the MD results are in the state
            extra = dict(self.state.get("md_log", {}))
            extra["resumed"] = True
        lab = self._label_pending(it, timings)
        self._save_state()
        fit_errors, val = {}, {}
        if len(self.store.indices(iteration=it)) or self.refit.n_folded < len(self.store):
            fit_errors, val = self._fit(it, timings)   # (re-)fit: new data this iteration
        else:
            self.state["bundle"].version = it
        timings["total"] = time.perf_counter() - t_all
        rec = self.log.write("iteration", iteration=it, model_version=it,
                             n_train=len(self.store), **extra, **lab,
                             reference_calls_total=self.state["reference_calls"],
                             fit=fit_errors, validation=val, timings=timings,
                             properties=self.state["history"][-1].get("properties"))
        self.state["phase"] = "done"
        self.state.pop("md_log", None)
        self._save_state()
        self.progress.iteration(rec, self.cfg.stopping.max_iterations)

    # ------------------------------------------------------------------ driver
    def run(self) -> dict:
        """Run (or resume) the campaign to a stopping rule; returns the final summary."""
        from aceal.store import open_store

        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self._start()
        store_path = self.out / self.cfg.output.store
        with open_store(store_path, "a") as store:
            self.store = store
            self.log.write("start", resumed=resumed, iteration=self.state["iteration"],
                           phase=self.state["phase"], ranks=self.engine.comm.size,
                           threads=self.engine.ctx.threads, store=str(store_path),
                           n_train=len(store))
            self.progress.say(
                ("resuming" if resumed else "starting") + f" campaign in {self.out} "
                f"(iteration {self.state['iteration']}, phase {self.state['phase']}, "
                f"{len(store)} configurations, {self.engine.comm.size} rank(s), "
                f"{self.engine.ctx.threads} thread(s) per rank)")
            if self.state["iteration"] == 0 and self.state["phase"] in ("new", "labelling"):
                self._iteration0()
            else:
                self.validation = self._validation_set()
                self._make_refitter()
            while True:
                if self.state["phase"] != "labelling":
                    reason = self._stop_reason()
                    if reason:
                        break
                    it = self.state["iteration"] + 1
                else:
                    it = self.state["iteration"]
                self._iteration(it)
            self.state["phase"] = "finished"
            self.state["stop_reason"] = reason
            self._save_state()
            summary = {"stop_reason": reason, "iterations": self.state["iteration"],
                       "n_train": len(store), "reference_calls": self.state["reference_calls"],
                       "failures": self.state["failures"],
                       "wall_time": self.state["wall_time"],
                       "final_validation": self.state["history"][-1] if self.state["history"]
                       else None}
            self.log.write("finish", **summary)
        self.progress.say(f"finished: {reason}; {summary['n_train']} training configurations, "
                          f"{summary['reference_calls']} reference calls, "
                          f"{summary['failures']} failures")
        if self.cfg.output.plots:
            from aceal.loop.summary import write_summary

            paths = write_summary(self.out, self.cfg.output.log)
            self.progress.say(f"summary: {', '.join(str(p) for p in paths)}")
        return summary
