"""Model-independent uncertainty tools for active learning.

Everything here works on plain arrays of per-atom descriptors (shape
``(n_atoms, n_features)``, e.g. the ACE basis values ``B_k(i)``) or on a callable
``descriptor_fn(atoms) -> ndarray``, so any descriptor (or model) can be plugged in.

* :mod:`.rare_events`: :class:`RareEventMonitor`, an ASE dynamics observer flagging hops,
  coordination changes, bond events and jumps of per-atom signals.
* :mod:`.force_metrics`: force-magnitude and direction errors on rare-event atoms.
* MaxVol, D-optimal active sets and the extrapolation grade gamma are re-exported from
  :mod:`aceal.active_set` (it lives below the calculator, which grades with it).
* :mod:`.entropy`: k-NN entropy of descriptor distributions and greedy max-entropy picks.
* :mod:`.selection`: threshold verdicts and diverse batches (fps, d-optimal, entropy).
* :mod:`.generator`: label-free, entropy-driven structure generator.

The names below are loaded on first use (PEP 562), so importing one submodule does not
import the others.
"""

import importlib

#: submodule -> the public names it defines
_MODULES = {
    "aceal.active_set": (
        "ActiveSetInverse", "active_set_inverse", "build_active_set", "extrapolation_grade",
        "extrapolation_grade_by_element", "maxvol",
    ),
    "entropy": (
        "DescriptorTransform", "EntropySelection", "descriptor_entropy", "entropy_gain",
        "knn_entropy", "select_max_entropy",
    ),
    "force_metrics": (
        "ErrorStats", "ForceErrorDistribution", "RareEventForceMetrics", "force_direction_angle",
        "force_magnitude_error", "rare_event_force_metrics", "summarize_errors",
    ),
    "generator": ("MOVES", "GeneratorResult", "generate_structures", "propose_move"),
    "rare_events": (
        "RareEvent", "RareEventMonitor", "estimate_nn_distance", "estimate_shell_cutoff",
    ),
    "selection": (
        "DPGEN_FORCE_DEVIATION", "PACEMAKER_GAMMA", "BatchSelection", "ThresholdResult",
        "configuration_features", "farthest_point_sampling", "greedy_d_optimal", "select_batch",
        "threshold_select",
    ),
}  # fmt: skip
#: public name -> the module that defines it
_LAZY = {name: mod if "." in mod else f"{__name__}.{mod}"
         for mod, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _MODULES:  # as when this package imported its submodules eagerly
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
