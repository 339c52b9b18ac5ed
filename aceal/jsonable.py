"""Convert results to plain JSON/YAML-safe Python (one helper for every writer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(obj: Any, drop: Collection[str] = (), other: Callable | None = None) -> Any:
    """Copy of ``obj`` with numpy scalars/arrays as Python numbers/lists, mapping keys as
    strings, paths as strings and non-finite floats as ``None``.

    ``drop``: mapping keys left out at any depth (e.g. lists of ``Atoms``); ``other``:
    applied to anything that is not a number, string, bool or None (default: kept).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, drop, other) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v, drop, other) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), drop, other)
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), drop, other)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if other is None or obj is None or isinstance(obj, str | int | float):
        return obj
    return other(obj)
