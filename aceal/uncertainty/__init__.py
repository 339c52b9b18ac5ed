"""Model-independent uncertainty tools for active learning.

Everything here works on plain arrays of per-atom descriptors (shape
``(n_atoms, n_features)``, e.g. the ACE basis values ``B_k(i)``) or on a callable
``descriptor_fn(atoms) -> ndarray``, so any descriptor (or model) can be plugged in.

* :mod:`.rare_events`: :class:`RareEventMonitor`, an ASE dynamics observer flagging hops,
  coordination changes, bond events and jumps of per-atom signals.
* :mod:`.force_metrics`: force-magnitude and direction errors on rare-event atoms.
* :mod:`.active_set`: MaxVol, D-optimal active sets and the extrapolation grade gamma.
* :mod:`.entropy`: k-NN entropy of descriptor distributions and greedy max-entropy picks.
* :mod:`.selection`: threshold verdicts and diverse batches (fps, d-optimal, entropy).
* :mod:`.generator`: label-free, entropy-driven structure generator.
"""

from aceal.uncertainty.active_set import (
    ActiveSetInverse,
    active_set_inverse,
    build_active_set,
    extrapolation_grade,
    extrapolation_grade_by_element,
    maxvol,
)
from aceal.uncertainty.entropy import (
    DescriptorTransform,
    EntropySelection,
    descriptor_entropy,
    entropy_gain,
    knn_entropy,
    select_max_entropy,
)
from aceal.uncertainty.force_metrics import (
    ErrorStats,
    ForceErrorDistribution,
    RareEventForceMetrics,
    force_direction_angle,
    force_magnitude_error,
    rare_event_force_metrics,
    summarize_errors,
)
from aceal.uncertainty.generator import MOVES, GeneratorResult, generate_structures, propose_move
from aceal.uncertainty.rare_events import (
    RareEvent,
    RareEventMonitor,
    estimate_nn_distance,
    estimate_shell_cutoff,
)
from aceal.uncertainty.selection import (
    DPGEN_FORCE_DEVIATION,
    PACEMAKER_GAMMA,
    BatchSelection,
    ThresholdResult,
    configuration_features,
    farthest_point_sampling,
    greedy_d_optimal,
    select_batch,
    threshold_select,
)

__all__ = [
    "DPGEN_FORCE_DEVIATION",
    "MOVES",
    "PACEMAKER_GAMMA",
    "ActiveSetInverse",
    "BatchSelection",
    "DescriptorTransform",
    "EntropySelection",
    "ErrorStats",
    "ForceErrorDistribution",
    "GeneratorResult",
    "RareEvent",
    "RareEventForceMetrics",
    "RareEventMonitor",
    "ThresholdResult",
    "active_set_inverse",
    "build_active_set",
    "configuration_features",
    "descriptor_entropy",
    "entropy_gain",
    "estimate_nn_distance",
    "estimate_shell_cutoff",
    "extrapolation_grade",
    "extrapolation_grade_by_element",
    "farthest_point_sampling",
    "force_direction_angle",
    "force_magnitude_error",
    "generate_structures",
    "greedy_d_optimal",
    "knn_entropy",
    "maxvol",
    "propose_move",
    "rare_event_force_metrics",
    "select_batch",
    "select_max_entropy",
    "summarize_errors",
    "threshold_select",
]
