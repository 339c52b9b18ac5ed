"""The linear ACE basis (:class:`ACEBasis`) and the C-tilde contract with the kernels."""

from aceal.basis.ace_basis import ACEBasis

__all__ = ["ACEBasis"]
