"""aceal: Atomic Cluster Expansion potentials and active learning, in Python.

The public entry points::

    from aceal import ACEBasis, ACEModel, ACECalculator

They are loaded on first use (PEP 562), so ``import aceal.store`` or ``import aceal.basis``
does not pull in numba and the kernels.
"""

import importlib

__all__ = ["ACEBasis", "ACEModel", "ACECalculator"]
__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "ACEBasis": "aceal.basis",
    "ACEModel": "aceal.model",
    "ACECalculator": "aceal.calculator",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
