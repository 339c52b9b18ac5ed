"""Errors raised by the training store (all are bad-input errors for the CLI)."""

from aceal.errors import AcealInputError


class StoreError(AcealInputError):
    """The path is not a usable store, or the requested operation is not allowed."""


class StoreLockedError(StoreError):
    """Another live process holds the writer lock."""


class StoreVersionError(StoreError):
    """The store was written in a newer format than this aceal can read."""
