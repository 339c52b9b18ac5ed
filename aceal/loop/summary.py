"""Campaign summary: ``summary.json`` and ``summary.png`` from the JSON-lines log.

Panels (matplotlib, Agg backend): validation force MAE (eV/Å) against cumulative
reference calls; committee force deviation (eV/Å) and extrapolation grade of the walkers
against MD time (fs); labelled configurations per iteration by selection reason; with
``stopping.properties``, a fourth panel: each property's committee spread (eV, or relative)
against reference calls.
"""

from __future__ import annotations

import json
from pathlib import Path

from aceal.loop.log import read_log

__all__ = ["write_summary", "summarise"]


def summarise(records: list[dict]) -> dict:
    """Condensed numbers of a campaign log (per-iteration curves and totals)."""
    its = [r for r in records if r.get("event") == "iteration"]
    curve = [{"iteration": r["iteration"], "reference_calls": r.get("reference_calls_total"),
              "n_train": r.get("n_train"),
              "forces_mae": (r.get("validation") or {}).get("forces_mae"),
              "energy_mae": (r.get("validation") or {}).get("energy_mae"),
              "property_sigma": _sigmas(r)} for r in its]
    reasons: dict[str, int] = {}
    for r in its:
        for k, v in (r.get("selected_by_reason") or {}).items():
            reasons[k] = reasons.get(k, 0) + v
    timings: dict[str, float] = {}
    for r in its:
        for k, v in (r.get("timings") or {}).items():
            timings[k] = timings.get(k, 0.0) + float(v or 0.0)
    finish = [r for r in records if r.get("event") == "finish"]
    return {"iterations": curve, "selected_by_reason": reasons, "timings": timings,
            "failures": sum(r.get("failed", 0) for r in its),
            "finish": finish[-1] if finish else None}


def _sigmas(record: dict) -> dict[str, float] | None:
    """``{"element name (unit)": committee spread}`` of an iteration record, if logged."""
    props = record.get("properties")
    if not props:
        return None
    return {f"{el} {name} ({d['unit']})": d["sigma"]
            for el, by_name in props.items() for name, d in by_name.items()}


def write_summary(outdir: str | Path, log_name: str = "log.jsonl") -> list[Path]:
    """Write ``summary.json`` and ``summary.png`` into ``outdir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(outdir)
    records = read_log(out / log_name)
    summ = summarise(records)
    jpath = out / "summary.json"
    jpath.write_text(json.dumps(summ, indent=1))
    its = [r for r in records if r.get("event") == "iteration"]
    with_props = any(c["property_sigma"] for c in summ["iterations"])
    fig, ax = plt.subplots(1, 4 if with_props else 3, figsize=(20 if with_props else 15, 4.2))
    pts = [(c["reference_calls"], c["forces_mae"]) for c in summ["iterations"]
           if c["forces_mae"] is not None]
    if pts:
        ax[0].plot(*zip(*pts, strict=True), "o-")
    ax[0].set_xlabel("reference calls")
    ax[0].set_ylabel("validation force MAE (eV/Å)")
    ax[0].set_title("validation error")
    walkers: dict[int, list] = {}
    for r in its:
        for row in r.get("trace") or []:
            walkers.setdefault(row[0], []).append(row[1:])
    ax2 = ax[1].twinx()
    for w, rows in sorted(walkers.items()):
        t = [x[0] for x in rows]
        ax[1].plot(t, [x[1] if x[1] is not None else float("nan") for x in rows], "-",
                   lw=0.8, label=f"walker {w}")
        ax2.plot(t, [x[2] if x[2] is not None else float("nan") for x in rows], ":",
                 lw=0.8)
    ax[1].set_xlabel("MD time (fs)")
    ax[1].set_ylabel("max committee force std (eV/Å), solid")
    ax2.set_ylabel("max extrapolation grade γ, dotted")
    ax[1].set_title("uncertainty along the walkers")
    if walkers:
        ax[1].legend(fontsize=7)
    kinds = sorted({k for r in its for k in (r.get("selected_by_reason") or {})})
    bottom = [0] * len(its)
    x = [r["iteration"] for r in its]
    for k in kinds:
        h = [(r.get("selected_by_reason") or {}).get(k, 0) for r in its]
        ax[2].bar(x, h, bottom=bottom, label=k)
        bottom = [b + v for b, v in zip(bottom, h, strict=True)]
    ax[2].set_xlabel("iteration")
    ax[2].set_ylabel("labelled configurations")
    ax[2].set_title("selected configurations by reason")
    if kinds:
        ax[2].legend(fontsize=8)
    if with_props:
        series: dict[str, list] = {}
        for c in summ["iterations"]:
            for key, sig in (c["property_sigma"] or {}).items():
                series.setdefault(key, []).append((c["reference_calls"], sig))
        for key, pts in sorted(series.items()):
            ax[3].semilogy(*zip(*pts, strict=True), "o-", label=key)
        ax[3].set_xlabel("reference calls")
        ax[3].set_ylabel("committee spread σ (eV, or relative)")
        ax[3].set_title("property spreads (stopping.properties)")
        ax[3].legend(fontsize=7)
    fig.tight_layout()
    ppath = out / "summary.png"
    fig.savefig(ppath, dpi=100)
    plt.close(fig)
    return [jpath, ppath]
