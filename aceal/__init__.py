"""aceal: Atomic Cluster Expansion potentials and active learning, in Python.

The public entry points::

    from aceal import ACEBasis, ACEModel, ACECalculator
"""

from aceal.basis import ACEBasis
from aceal.calculator import ACECalculator
from aceal.model import ACEModel

__all__ = ["ACEBasis", "ACEModel", "ACECalculator"]
__version__ = "0.1.0"
