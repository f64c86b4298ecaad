"""Names from outside (models a plugin registers, suite names, run ids from imported files) made safe for
each place they go: a path, a terminal, Markdown, a link, a plot. Nothing else turns a name into any of them.

    path(folder, name)   a file or folder name inside ``folder`` that cannot leave it: the name itself when it is
                         already a plain file stem, else a slug of it plus a short hash of the real name (so two
                         names never share a slug by accident, and ``../x``, ``a/b``, ``.`` stay inside)
    terminal(text)       control characters (escape codes, carriage returns, bidi overrides) shown as ``\\x1b``,
                         never sent raw: a name cannot clear the screen or print a fake row
    markdown(text)       table-cell and code-span text that Markdown shows as written (HTML, pipes, backticks)
    href(path)           a relative link that a browser cannot read as a URL scheme (``javascript:``)
Plot text is plain text because the report turns matplotlib's mathtext off (``text.parse_math``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote

_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(name: str) -> str:
    """One path component for ``name``: itself when it is a plain file stem, else a slug plus 8 hex digits of
    its SHA-256 (``'../x'`` -> ``'x-1b4f0e98'``)."""
    name = str(name)
    if _STEM.fullmatch(name) and not name.endswith("."):
        return name
    cleaned = _UNSAFE.sub("_", name).strip("._-")[:80] or "name"
    return f"{cleaned}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def path(folder: "str | Path", *names: str) -> Path:
    """``folder`` / one slug per name: however the names are spelled, the result is inside ``folder``."""
    out = Path(folder)
    for name in names:
        out = out / slug(name)
    return out


def _shown(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii") if _hidden(char) else char


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def terminal(text: object) -> str:
    """``text`` with every control and format character escaped (``\\x1b``, ``\\r``, ``\\u202e``): safe to print."""
    text = str(text)
    return "".join(map(_shown, text)) if any(map(_hidden, text)) else text


def terminal_lines(text: str) -> str:
    """Several lines for a terminal: each escaped, the line breaks between them kept."""
    return "\n".join(terminal(line) for line in text.split("\n"))


def markdown(text: object) -> str:
    """Text that Markdown shows as written, in a table cell or a heading: HTML, pipes, backticks and brackets
    (no link can form) escaped."""
    text = terminal(text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("`", "&#96;").replace("[", "\\[").replace("]", "\\]"))


def href(relative: "str | Path") -> str:
    """A relative path as a link target: percent-encoded, and starting with ``./`` so that no part of it can
    be read as a scheme (``javascript:``)."""
    text = quote(Path(relative).as_posix(), safe="/._-~")
    return text if text.startswith(("./", "../")) else "./" + text


__all__ = ["slug", "path", "terminal", "terminal_lines", "markdown", "href"]
