"""Exceptions that carry a user-facing message.

Every error caused by bad input (a file, a key, a value) is an :class:`AcealInputError`
or a subclass; the CLI prints its message on one line and exits with status 2.
"""


class AcealInputError(ValueError):
    """Bad user input: the message names the file, key or value at fault."""


class UnknownElementError(AcealInputError, KeyError):
    """An atom's element is not known to the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
