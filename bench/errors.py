"""The one error tree of the harness. The CLI catches ``CnnbenchError`` once.

    CnnbenchError                 anything the harness reports as one line
     └── BadInput                 the user asked for something not allowed (exit 2)
          ├── UnknownModel        a name that is not registered
          ├── BadValue            a malformed or out-of-range option value
          └── ShapeMismatch       an input shape the network cannot take

Messages state the rule and quote the bad value with ``!r``.
"""

from __future__ import annotations


class CnnbenchError(Exception):
    """Base of every error the harness reports without a traceback."""

    exit_code = 1


class BadInput(CnnbenchError):
    exit_code = 2


class UnknownModel(BadInput):
    pass


class BadValue(BadInput):
    pass


class ShapeMismatch(BadInput):
    pass
