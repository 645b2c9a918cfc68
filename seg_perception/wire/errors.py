"""Error text shared by every layer: one line per problem, of bounded length, fit for a log line,
a CLI message or a diagnostics value."""
from __future__ import annotations

from typing import Final

ERROR_TEXT_LIMIT: Final = 600
"""Characters of an error text kept for a log line, a diagnostics status or a CLI message: a
problem is named in a sentence; more is somebody's data quoted back (a YAML alias bomb's value
was 59 MB)."""


def bounded(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """`text` on one line (runs of whitespace, newlines included, become one space) and at most
    about `limit` characters; a cut text ends in '...' and says how long it was. Only the head is
    looked at, so a 59 MB text costs no more than a short one."""
    head = " ".join(text[: limit * 2].split())
    if len(head) <= limit and len(text) <= limit * 2:
        return head
    return f"{head[:limit]}... ({len(text)} chars)"


def first_line(exc: BaseException, limit: int = ERROR_TEXT_LIMIT) -> str:
    """The first line of an exception's message, or its type name when it has none.

    Library errors (ONNX Runtime, torch.jit) carry pages of context after the first line;
    the first line names the problem.
    """
    text = str(exc).strip()
    return bounded(text.splitlines()[0], limit) if text else type(exc).__name__


def one_line(problem: BaseException | str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """All of a message on one line, bounded (see `bounded`); an exception without a message is
    named by its type."""
    text = str(problem)
    if not text.strip() and isinstance(problem, BaseException):
        return type(problem).__name__
    return bounded(text, limit)
