"""Batch selection glue: from walker candidates to the structures sent to the oracle.

Wraps :func:`aceal.uncertainty.select_batch`: rare-event and blow-up candidates are taken
first (``priority``, when ``rare_event_priority`` is on), the rest of the batch is the
most informative (``information``: expected information gain under the current
posterior), most diverse (``fps``, ``d-optimal`` or ``entropy`` over the per-atom basis
values relative to the training set) or uniformly random (``random``, the baseline) of
the remaining candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from aceal.loop.walker import Candidate

__all__ = ["least_certain_relaxed", "protocol_slots", "select_candidates", "unit_noise_rows"]


def unit_noise_rows(atoms: Atoms, design, weights, beta: float) -> np.ndarray:
    """The fit's rows of an unlabelled frame, scaled to unit observation noise.

    Energy per atom, forces and virial per atom exactly as :func:`aceal.fit.assembly.
    observations` builds them (same kinds, same per-kind and config-type weights ``w``),
    each multiplied by ``sqrt(beta * w)`` with ``beta`` the posterior's noise precision of
    the weighted residuals.  ``(r, M)``.
    """
    from aceal.fit.assembly import observations
    from aceal.fit.data import Labels

    n = len(atoms)
    labels = Labels(0.0, np.zeros((n, 3)), np.zeros(6) if atoms.pbc.all() else None,
                    str(atoms.info.get("config_type", "default")), 1.0)
    e0 = {s: 0.0 for s in set(atoms.get_chemical_symbols())}
    obs = observations(atoms, design, labels, weights, e0)
    return np.vstack([r * np.sqrt(beta * obs.weights[k]) for k, r in obs.rows.items()])


def protocol_slots(available: dict[str, int], k: int, rotation: int = 0) -> dict[str, int]:
    """Share ``k`` batch slots evenly among the protocols with candidates.

    Each protocol serves a different property (relaxed defects, barriers, elastic
    constants, the repulsive core), so none may crowd out the others: the slots go round
    the protocols (in name order, starting ``rotation`` places along) one at a time, a
    protocol with no candidates left passing its turn.  ``available`` maps protocol to
    its number of candidates.  Returns protocol -> slots (only protocols with slots).
    """
    names = sorted(kind for kind, count in available.items() if count > 0)
    if not names:
        return {}
    start = rotation % len(names)
    names = names[start:] + names[:start]
    slots = dict.fromkeys(names, 0)
    k = min(k, sum(available[name] for name in names))
    while k > 0:
        for name in names:
            if k > 0 and slots[name] < available[name]:
                slots[name] += 1
                k -= 1
    return {name: count for name, count in slots.items() if count}


def least_certain_relaxed(candidates: Sequence[Candidate], subset: Sequence[int],
                          k: int) -> list[int]:
    """Up to ``k`` of the relaxed end states in ``subset``, the largest committee spread
    of the total energy (eV) first; none without a committee.

    A formation energy is the energy of a relaxed state, so the relaxed state whose
    energy the committee is least sure of is the protocol frame worth labelling; the
    spread of the frame's total energy is the first-order spread of the property.
    """
    spread = {i: candidates[i].signals.get("energy_std", np.nan) * len(candidates[i].atoms)
              for i in subset if candidates[i].relaxed}
    ranked = sorted((i for i, v in spread.items() if np.isfinite(v) and v > 0),
                    key=lambda i: -spread[i])
    return ranked[:max(k, 0)]


def select_candidates(candidates: Sequence[Candidate], n: int, method: str,
                      training_means: np.ndarray | None, rare_event_priority: bool = True,
                      priority_share: float = 0.5, posterior=None,
                      weights=None, protocol_share: float = 0.0,
                      rng: np.random.Generator | None = None,
                      rotation: int = 0) -> tuple[list[int], list[str]]:
    """Choose at most ``n`` candidates to label.

    Parameters
    ----------
    candidates
        Walker and protocol candidates (with their per-atom descriptors; with their design
        rows for ``information``).
    n
        Batch size (reference calls this iteration).
    method
        ``"information"``, ``"fps"``, ``"d-optimal"``, ``"entropy"`` or ``"random"``
        (see :mod:`aceal.uncertainty.selection`).
    training_means
        ``(n_train, M)`` mean descriptor of each training configuration, or ``None``.
    rare_event_priority
        Take rare-event and blow-up candidates first, then fill the batch.
    priority_share
        At most this fraction of the batch (rounded up) is taken by priority; if there are
        more priority candidates, the best of them by ``method`` are taken.
    posterior, weights
        ``information`` only: the current :class:`aceal.fit.solvers.Posterior` and the
        fit's :class:`aceal.fit.Weights`.
    protocol_share
        This fraction of the batch (rounded up) is reserved for the exploration protocols'
        candidates (``walker == -1``), shared out evenly among the protocols present
        (:func:`protocol_slots`): within a protocol the relaxed end states come first,
        least certain energy first (:func:`least_certain_relaxed`), then the best of
        its other candidates by ``method``; the rest of the batch is filled from all
        candidates.
    rng
        ``random`` only: the generator of the draws.
    rotation
        Which protocols get the slots that do not divide evenly (the campaign passes
        the iteration, so every protocol gets its turn).

    Returns
    -------
    (indices, reasons)
        Chosen candidate indices and why each was picked.
    """
    from aceal.uncertainty import select_batch

    if n <= 0 or not candidates:
        return [], []
    if len(candidates) <= n:
        return list(range(len(candidates))), ["all candidates fit in the batch"] * len(candidates)
    training = None
    if training_means is not None and len(training_means):
        training = [row[None, :] for row in training_means]
    descriptors = [c.descriptors for c in candidates]
    extra: dict = {}
    if method == "information":
        if posterior is None or weights is None or any(c.rows is None for c in candidates):
            raise ValueError("selection method 'information' needs the posterior, the fit "
                             "weights and the candidates' design rows")
        extra = {"rows": [unit_noise_rows(c.atoms, c.rows, weights, posterior.beta)
                          for c in candidates],
                 "factor": posterior.factor()}

    def best(subset: list[int], k: int) -> list[int]:
        """The best ``k`` of ``subset`` by ``method`` (all of them if there are <= k)."""
        if k <= 0:
            return []
        if len(subset) <= k:
            return subset
        sub_extra = {key: v for key, v in extra.items() if key != "rows"}
        if "rows" in extra:
            sub_extra["rows"] = [extra["rows"][i] for i in subset]
        sub = select_batch([descriptors[i] for i in subset], k, method=method,
                           training=training, rng=rng, **sub_extra)
        return [subset[i] for i in sub.indices]

    priority: list[int] = []
    if rare_event_priority:
        urgent = [i for kind in ("rare_event", "blowup")
                  for i, c in enumerate(candidates) if c.reason == kind]
        priority = best(urgent, int(np.ceil(priority_share * n)))
    protocols: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        if c.walker < 0 and i not in priority:
            protocols.setdefault(c.reason, []).append(i)
    slots = protocol_slots({k: len(v) for k, v in protocols.items()},
                           min(int(np.ceil(protocol_share * n)), n - len(priority)), rotation)
    for kind, k in slots.items():
        first = least_certain_relaxed(candidates, protocols[kind], k)
        priority += first + best([i for i in protocols[kind] if i not in first], k - len(first))
    sel = select_batch(descriptors, n, method=method, training=training, priority=priority,
                       rng=rng, **extra)
    reasons = [f"priority ({candidates[i].reason})" if i in priority else r
               for i, r in zip(sel.indices, sel.reasons, strict=True)]
    return list(sel.indices), reasons
