"""Error text shared by every layer: one line per problem, fit for a log line or a CLI message."""
from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none.

    Library errors (ONNX Runtime, torch.jit) carry pages of context after the first line;
    the first line names the problem.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
