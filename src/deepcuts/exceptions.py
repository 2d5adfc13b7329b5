"""Exceptions and warnings shared by every layer.

User mistakes raise a subclass of :class:`DeepcutsError`; the CLI prints its message and exits
non-zero without a traceback. Messages name the file, line or field and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DeepcutsError",
    "DeepcutsWarning",
    "EmptyListWarning",
    "UnknownItemsWarning",
    "NotFittedError",
    "UnknownIdError",
]


class DeepcutsError(Exception):
    """Base class of errors caused by user input (bad file, bad argument, unknown id)."""


class DataError(DeepcutsError, ValueError):
    """A data file or table is malformed.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    path : str, optional
        The file being read.
    line : int, optional
        1-based line number in ``path``.
    field : str, optional
        Column or field name.
    """

    def __init__(self, message: str, *, path=None, line=None, field=None):
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class UnknownIdError(DeepcutsError, KeyError):
    """An external user or item id is not known to the model or id map."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotFittedError(DeepcutsError, AttributeError):
    """A model was used before ``fit`` was called."""


class DeepcutsWarning(UserWarning):
    """Base class of deepcuts warnings."""


class UnknownItemsWarning(DeepcutsWarning):
    """Items of a listening history are not known to the model and were left out.

    The list is then computed from the rest of the history only; pass ``missing_items="raise"``
    to refuse such histories, or ``"ignore"`` to drop unknown items silently.
    """


class EmptyListWarning(DeepcutsWarning):
    """A filter (such as the obscurity band) left a user no eligible item: the list is empty.

    Costs nothing but the user's list; widen the filter to get items back.
    """
