"""A read-only selection of a store's configurations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from aceal.store.store import Index, TrainingStore

#: default number of configurations decoded at a time by iterators
DEFAULT_CHUNK = 512


class StoreView:
    """A read-only selection of configurations of a :class:`TrainingStore`.

    Parameters
    ----------
    store : TrainingStore
        The store.
    indices : numpy.ndarray
        Store indices in view order.
    """

    def __init__(self, store: TrainingStore, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: Index) -> Atoms | list[Atoms]:
        sub = self.indices[key]
        if np.ndim(sub) == 0:
            return self.store[int(sub)]
        return self.store[np.asarray(sub, dtype=np.int64)]

    def __iter__(self) -> Iterator[Atoms]:
        for chunk in self.iter_chunks():
            yield from chunk

    def iter_chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[list[Atoms]]:
        """Yield the view's configurations ``size`` at a time."""
        return self.store.iter_chunks(size, self.indices)

    def __repr__(self) -> str:
        return f"<StoreView of {self.store.path}: {len(self)} configurations>"
