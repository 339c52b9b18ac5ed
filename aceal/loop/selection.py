"""Batch selection glue: from walker candidates to the structures sent to the oracle.

Wraps :func:`aceal.uncertainty.select_batch`: rare-event and blow-up candidates are taken
first (``priority``, when ``rare_event_priority`` is on), the rest of the batch is the
most diverse of the remaining candidates relative to the training set (``fps``,
``d-optimal`` or ``entropy`` over the per-atom basis values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aceal.loop.walker import Candidate

__all__ = ["select_candidates"]


def select_candidates(candidates: Sequence[Candidate], n: int, method: str,
                      training_means: np.ndarray | None, rare_event_priority: bool = True,
                      priority_share: float = 0.5) -> tuple[list[int], list[str]]:
    """Choose at most ``n`` candidates to label.

    Parameters
    ----------
    candidates
        Walker candidates (with their per-atom descriptors).
    n
        Batch size (reference calls this iteration).
    method
        ``"fps"``, ``"d-optimal"`` or ``"entropy"`` (see :mod:`aceal.uncertainty.selection`).
    training_means
        ``(n_train, M)`` mean descriptor of each training configuration, or ``None``.
    rare_event_priority
        Take rare-event and blow-up candidates first, then fill the batch by diversity.
    priority_share
        At most this fraction of the batch (rounded up) is taken by priority; if there are
        more priority candidates, the most diverse of them are taken.

    Returns
    -------
    (indices, reasons)
        Chosen candidate indices and why each was picked.
    """
    from aceal.uncertainty import select_batch

    if n <= 0 or not candidates:
        return [], []
    priority: list[int] = []
    if rare_event_priority:
        for kind in ("rare_event", "blowup"):
            priority += [i for i, c in enumerate(candidates) if c.reason == kind]
    if len(candidates) <= n:
        return list(range(len(candidates))), ["all candidates fit in the batch"] * len(candidates)
    training = None
    if training_means is not None and len(training_means):
        training = [row[None, :] for row in training_means]
    descriptors = [c.descriptors for c in candidates]
    n_pri = min(len(priority), int(np.ceil(priority_share * n)))
    if n_pri == 0:
        priority = []
    elif n_pri < len(priority):
        # more rare-event/blow-up frames than their share: the most diverse of them
        sub = select_batch([descriptors[i] for i in priority], n_pri, method=method,
                           training=training)
        priority = [priority[i] for i in sub.indices]
    sel = select_batch(descriptors, n, method=method, training=training, priority=priority)
    reasons = [f"priority ({candidates[i].reason})" if i in priority else r
               for i, r in zip(sel.indices, sel.reasons, strict=True)]
    return list(sel.indices), reasons
