"""The one error tree of the harness. The CLI catches ``CnnbenchError`` once.

    CnnbenchError                 anything the harness reports as one line (exit 1)
     ├── WorkerFailed             a worker the harness needed ended without its answer, with why
     ├── BadInput                 the user asked for something not allowed (exit 2)
     │    ├── UnknownModel        a name that is not registered
     │    ├── BadValue            a malformed or out-of-range option value
     │    ├── ShapeMismatch       an input shape the network cannot take
     │    └── StoreError          a store that cannot be used as asked; nothing was written
     └── Unavailable              this environment lacks something the command needs: a package,
          │                       a plugin module, a writable folder (exit 3)
          └── StoreUnavailable    a store that cannot be reached or written now (a server down or lost,
                                  a full disk); what it committed stays

Messages state the rule and quote the bad value with ``!r``.
"""

from __future__ import annotations

import errno


class CnnbenchError(Exception):
    """Base of every error the harness reports without a traceback."""

    exit_code = 1


class WorkerFailed(CnnbenchError):
    """A worker process ended without the answer it was started for; the message says how it ended and what its
    stderr said last."""


class BadInput(CnnbenchError):
    exit_code = 2


class UnknownModel(BadInput):
    pass


class BadValue(BadInput):
    pass


class ShapeMismatch(BadInput):
    pass


class StoreError(BadInput):
    """The store cannot be used as asked (missing, corrupt, newer, not a store); nothing was written."""


class Unavailable(CnnbenchError):
    """The environment lacks what the command needs; the user's input was fine."""

    exit_code = 3


class StoreUnavailable(Unavailable):
    """The store cannot be reached or written now (its server is down or was lost, its disk is full): every
    transaction committed before stays, the one under way is not stored."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cannot(action: str, exc: OSError) -> CnnbenchError:
    """The error for a failed file operation on a path the user named, e.g. ``cannot("write report 'x'", exc)``:
    BadValue when the path itself is wrong (a file where a folder is meant, a folder where a file is, a name
    that does not exist), Unavailable when the place is fine but unusable here (no permission, read-only, full)."""
    wrong_path = {errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG}
    kind = BadValue if exc.errno in wrong_path else Unavailable
    return kind(f"cannot {action}: {exc.strerror or first_line(exc)}")
