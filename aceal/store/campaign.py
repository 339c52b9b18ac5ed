"""Side tables of a campaign: failed reference calculations and fitted models."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from aceal.store.records import Categories, decode_text
from aceal.store.schema import ATOMS, ROWS
from aceal.store.table import Table


@dataclass(frozen=True)
class FailureRecord:
    """A failed reference calculation (not training data).

    Attributes
    ----------
    index : int
        Position in the failures table.
    atoms : Atoms
        The structure that was sent to the reference calculator.
    reason : str
        Error text.
    iteration : int or None
        Campaign iteration.
    source, calculator : str or None
        Provenance.
    rank : int or None
        Walker rank.
    timestamp : float
        Seconds since the Unix epoch.
    """

    index: int
    atoms: Atoms
    reason: str
    iteration: int | None
    source: str | None
    rank: int | None
    calculator: str | None
    timestamp: float


@dataclass(frozen=True)
class ModelRecord:
    """A model fitted during a campaign.

    Attributes
    ----------
    index : int
        Position in the models table.
    text : str
        The model file's text.
    iteration : int or None
        Campaign iteration.
    metrics : dict
        Metrics (JSON object), e.g. RMSEs in eV/atom and eV/Å.
    timestamp : float
        Seconds since the Unix epoch.
    """

    index: int
    text: str
    iteration: int | None
    metrics: dict
    timestamp: float


def _as_codes(values: Any) -> list:
    if values is None:
        return []
    if isinstance(values, (str, int, np.integer)):
        return [values]
    return list(values)


def _opt(value: Any) -> int | None:
    return None if value < 0 else int(value)


def read_failures(
    table: Table, lengths: Mapping[str, int], categories: Categories
) -> list[FailureRecord]:
    """Decode the committed rows of the ``failures`` table."""
    n = lengths[ROWS]
    if n == 0:
        return []
    rows = table.read_many([c.name for c in table.columns_on(ROWS)], slice(0, n))
    atoms_cols = table.read_many(["numbers", "positions"], slice(0, lengths[ATOMS]))
    reasons = decode_text(table.read("reason", slice(0, lengths["reason"])), rows["reason_nbytes"])
    out = []
    for i in range(n):
        start = int(rows["atom_start"][i])
        sl = slice(start, start + int(rows["natoms"][i]))
        atoms = Atoms(
            numbers=atoms_cols["numbers"][sl].astype(np.int64),
            positions=atoms_cols["positions"][sl],
            cell=rows["cell"][i],
            pbc=rows["pbc"][i],
        )
        out.append(
            FailureRecord(
                index=i,
                atoms=atoms,
                reason=reasons[i],
                iteration=_opt(rows["iteration"][i]),
                source=categories.name("source", int(rows["source"][i])),
                rank=_opt(rows["rank"][i]),
                calculator=categories.name("calculator", int(rows["calculator"][i])),
                timestamp=float(rows["timestamp"][i]),
            )
        )
    return out


def read_models(table: Table, lengths: Mapping[str, int]) -> list[ModelRecord]:
    """Decode the committed rows of the ``models`` table."""
    n = lengths[ROWS]
    if n == 0:
        return []
    rows = table.read_many([c.name for c in table.columns_on(ROWS)], slice(0, n))
    texts = decode_text(table.read("text", slice(0, lengths["text"])), rows["text_nbytes"])
    metrics = decode_text(
        table.read("metrics", slice(0, lengths["metrics"])), rows["metrics_nbytes"]
    )
    return [
        ModelRecord(
            index=i,
            text=texts[i],
            iteration=_opt(rows["iteration"][i]),
            metrics=json.loads(metrics[i]) if metrics[i] else {},
            timestamp=float(rows["timestamp"][i]),
        )
        for i in range(n)
    ]
