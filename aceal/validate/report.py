"""Validation report: Markdown (summary table first), PNG plots and one JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from aceal.jsonable import to_jsonable as _to_jsonable

__all__ = ["write_report", "to_jsonable", "summary_table"]


def to_jsonable(obj):
    """Plain-JSON copy: numpy -> Python, NaN/inf -> None, Atoms lists (``images``) dropped,
    anything else as its string."""
    return _to_jsonable(obj, drop=("images",), other=str)


def _fmt(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.{digits}g}"


def summary_table(rows: list[dict]) -> str:
    """Markdown table: suite | element | property | unit | reference | model | abs err | rel err
    (with a committee: model ± committee σ and whether the error is within 2σ)."""
    spread = any("committee_std" in r for r in rows)
    head = "| suite | element | property | unit | reference | model | abs. error | rel. error |"
    out = [head + (" within 2σ |" if spread else ""),
           "|---|---|---|---|---:|---:|---:|---:|" + ("---|" if spread else "")]
    for r in rows:
        rel = r["rel_error"]
        rel_s = "–" if rel is None or not math.isfinite(rel) else f"{100 * rel:.2f} %"
        model = _fmt(r["model"])
        if "committee_std" in r:
            model += f" ± {_fmt(r['committee_std'], 2)}"
        line = (f"| {r['suite']} | {r['element']} | {r['property']} | {r['unit']} | "
                f"{_fmt(r['reference'])} | {model} | {_fmt(r['abs_error'])} | {rel_s} |")
        if spread:
            line += (" yes |" if r.get("within_2sigma") else " no |") if "committee_std" in r \
                else " – |"
        out.append(line)
    return "\n".join(out)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, name: str) -> str:
    """Lay out, write ``out/name`` (PNG, 90 dpi), close; returns ``name``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _labels(meta):
    return {"reference": f"reference: {meta['reference']}", "model": f"model: {meta['model']}"}


def _plot_members(ax, members, x: str, y: str, shift_min: bool = False) -> None:
    """The committee members' curves, thin and grey (their spread is the model's σ)."""
    for k, m in enumerate(members):
        e = np.asarray(m[y])
        ax.plot(m[x], e - e.min() if shift_min else e, "-", color="0.6", lw=0.7,
                label=f"committee ({len(members)} members)" if k == 0 else None)


def _plot_eos(curves, meta, out: Path) -> list[str]:
    plt, files = _plt(), []
    for el, eos in curves.get("eos", {}).items():
        fig, ax = plt.subplots(figsize=(5, 3.6))
        _plot_members(ax, eos.get("members", ()), "volumes_A3_per_atom",
                      "energies_eV_per_atom", shift_min=True)
        for role, lab in _labels(meta).items():
            c = eos[role]
            e = np.asarray(c["energies_eV_per_atom"])
            ax.plot(
                c["volumes_A3_per_atom"],
                e - e.min(),
                "o-",
                ms=3,
                label=f"{lab} (a0={c['a0_A']:.4f} Å)",
            )
        ax.set_xlabel("volume (Å³/atom)")
        ax.set_ylabel("E - E_min (eV/atom)")
        ax.set_title(f"{el} E-V ({eos['reference']['structure']})")
        ax.legend(fontsize=7)
        files.append(_save(fig, out, f"eos_{el}.png"))
    return files


def _plot_neb(curves, meta, out: Path) -> list[str]:
    plt, files = _plt(), []
    for el, res in curves.get("defects", {}).items():
        fig, ax = plt.subplots(figsize=(5, 3.6))
        _plot_members(ax, res.get("members", ()), "path_coordinate", "path_energies_eV")
        for role, lab in _labels(meta).items():
            m = res[role]["migration"]
            ax.plot(
                m["path_coordinate"],
                m["path_energies_eV"],
                "o-",
                label=f"{lab} (Em={m['Em_eV']:.3f} eV)",
            )
        ax.set_xlabel("reaction coordinate")
        ax.set_ylabel("E - E_initial (eV)")
        ax.set_title(f"{el} vacancy hop (CI-NEB)")
        ax.legend(fontsize=7)
        files.append(_save(fig, out, f"neb_{el}.png"))
    return files


def _plot_md(curves, meta, out: Path) -> list[str]:
    plt, files = _plt(), []
    for el, res in curves.get("dynamics", {}).items():
        temps = [k for k in res["reference"] if k.startswith("T")]
        fig, axes = plt.subplots(
            1, len(temps) + 1, figsize=(4.2 * (len(temps) + 1), 3.4), squeeze=False
        )
        for ax, key in zip(axes[0], temps, strict=False):
            for role, lab in _labels(meta).items():
                g = res[role][key]["rdf"]
                ax.plot(g["r_A"], g["g"], label=lab)
            ax.set_xlabel("r (Å)")
            ax.set_ylabel("g(r)")
            ax.set_title(f"{el} RDF at {key[1:]} K")
            ax.legend(fontsize=7)
        ax = axes[0][-1]
        for role, lab in _labels(meta).items():
            n = res[role]["nve"]
            e = np.asarray(n["e_tot_eV_per_atom"])
            ax.plot(n["t_ps"], e - e[0], label=lab)
        ax.set_xlabel("t (ps)")
        ax.set_ylabel("E_tot - E_tot(0) (eV/atom)")
        ax.set_title(f"{el} NVE energy")
        ax.legend(fontsize=7)
        files.append(_save(fig, out, f"md_{el}.png"))
    return files


def _plot_errors(rows, out: Path) -> list[str]:
    keep = [r for r in rows if r["rel_error"] is not None and math.isfinite(r["rel_error"])]
    if not keep:
        return []
    labels = [f"{r['element']} {r['property']}" for r in keep][::-1]
    values = [100 * r["rel_error"] for r in keep][::-1]
    # committee 2σ relative to the reference, where there is a spread
    sig = [200 * r["committee_std"] / abs(r["reference"])
           if math.isfinite(r.get("committee_std", float("nan"))) and r["reference"] else 0.0
           for r in keep][::-1]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(keep) + 1.2))
    ax.barh(labels, values, color="tab:orange", label="|model - reference|")
    if any(sig):
        ax.scatter(sig, labels, marker="|", s=120, color="k", zorder=3,
                   label="2σ of the committee")
        ax.legend(fontsize=7)
    ax.set_xlabel("relative error (%)")
    ax.tick_params(axis="y", labelsize=7)
    return [_save(fig, out, "errors.png")]


def write_report(results: dict, out_dir: str | Path) -> dict:
    """Write ``report.md``, ``report.json`` and PNG plots into ``out_dir``.

    Returns
    -------
    dict
        ``{"markdown": path, "json": path, "plots": [paths]}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta, rows, curves = results["meta"], results["rows"], results["curves"]
    plots: dict[str, list[str]] = {
        "summary": _plot_errors(rows, out),
        "bulk": _plot_eos(curves, meta, out),
        "defects": _plot_neb(curves, meta, out),
        "dynamics": _plot_md(curves, meta, out),
    }
    if "fewbody" in curves:
        from aceal.validate.fewbody import plot_fewbody

        lab = _labels(meta)
        plot_fewbody(
            {lab[r]: curves["fewbody"][r] for r in ("reference", "model")}, out / "fewbody.png"
        )
        plots["fewbody"] = ["fewbody.png"]
    if "rare_events" in curves:
        from aceal.validate.rare_events import plot_rare_events

        plots["rare_events"] = []
        for name, m in curves["rare_events"].items():
            fn = f"rare_events_{name}.png"
            plot_rare_events(m, out / fn, title=f"{meta['model']} vs {meta['reference']}: {name}")
            plots["rare_events"].append(fn)
    if "dislocation" in curves:
        from aceal.validate.dislocation import plot_core

        plots["dislocation"] = []
        for el, res in curves["dislocation"].items():
            fn = f"dislocation_{el}.png"
            plot_core(res, out / fn, labels=_labels(meta))
            plots["dislocation"].append(fn)

    worst = sorted(
        (r for r in rows if r["rel_error"] is not None and math.isfinite(r["rel_error"])),
        key=lambda r: -r["rel_error"],
    )[:3]
    lines = [
        f"# Validation: {meta['model']} vs {meta['reference']}",
        "",
        f"Elements: {', '.join(meta['elements'])}. Suites: {', '.join(meta['suites'])}. "
        f"Errors are model - reference; relative error = |model - reference| / |reference|.",
        "",
    ]
    if worst:
        lines += [
            "Largest relative errors: "
            + "; ".join(
                f"{r['element']} {r['property']} {100 * r['rel_error']:.1f} %" for r in worst
            )
            + ".",
            "",
        ]
    cal = meta.get("calibration") or {}
    if cal.get("n_properties"):
        lines += [
            f"Committee of {meta.get('committee_size')} members: model values are given ± the "
            f"members' standard deviation σ (each member computed by the same protocol). "
            f"Calibration: {cal['within_2sigma']} of {cal['n_properties']} properties "
            f"({100 * cal['fraction_within_2sigma']:.0f} %) have |model - reference| ≤ 2σ.",
            "",
        ]
    lines += ["## Summary", "", summary_table(rows), ""]
    titles = {
        "summary": "Relative errors",
        "bulk": "E-V curves",
        "defects": "Vacancy migration paths",
        "fewbody": "Few-body curves",
        "dynamics": "Molecular dynamics",
        "rare_events": "Rare-event force errors",
        "dislocation": "Screw dislocation core",
    }
    for key, files in plots.items():
        if files:
            lines += [f"## {titles[key]}", ""] + [f"![{f}]({f})" for f in files] + [""]
    if "dynamics" in curves:
        lines += [
            "D is the MSD slope / 6 over the second half of each Langevin run; in a "
            "defect-free crystal below melting it is zero within noise.",
            "",
        ]
    if "rare_events" in curves:
        lines += [
            "Rare-event atoms: the hopping atom of each vacancy-hop image (or atoms displaced "
            f"> {meta['settings']['rare_threshold']} d_NN from their first-frame site).",
            "",
        ]
    lines += ["## Run", "", "| suite | time (s) |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in meta["timings_s"].items()]
    lines += ["", "Settings: `" + json.dumps(to_jsonable(meta["settings"])) + "`", ""]
    md = out / "report.md"
    md.write_text("\n".join(lines))
    js = out / "report.json"
    js.write_text(json.dumps(to_jsonable(results), indent=1))
    return {
        "markdown": str(md),
        "json": str(js),
        "plots": [str(out / f) for fs in plots.values() for f in fs],
    }
