"""Error text shared by every layer: one line per problem, of bounded length, fit for a log line,
a CLI message or a diagnostics value."""
from __future__ import annotations

from typing import Final

ERROR_TEXT_LIMIT: Final = 400
"""Characters of one error text kept (a library's message can be megabytes: a YAML bomb's
expansion, a gRPC error with the whole payload)."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def first_line(exc: BaseException, limit: int = ERROR_TEXT_LIMIT) -> str:
    """The first line of an exception's message, or its type name when it has none.

    Library errors (ONNX Runtime, torch.jit) carry pages of context after the first line;
    the first line names the problem.
    """
    text = str(exc).strip()
    return _cut(text.splitlines()[0], limit) if text else type(exc).__name__


def one_line(problem: BaseException | str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """All of a message on one line (runs of whitespace and newlines become one space), cut to
    `limit`; an exception without a message is named by its type."""
    text = " ".join(str(problem).split())
    if not text and isinstance(problem, BaseException):
        return type(problem).__name__
    return _cut(text, limit)
