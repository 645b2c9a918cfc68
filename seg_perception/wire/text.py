"""Strings that arrive from the wire (encodings, formats, frame ids), made safe to log.

A message field is whatever a publisher put there: a 1 MB "encoding" or one full of
newlines and terminal escapes would otherwise land verbatim in the log and on /rosout. Every
error text that quotes a field goes through :func:`wire_text`, so one bad publisher can grow
a log line by at most a fixed few dozen characters.
"""
from __future__ import annotations

from typing import Any, Final

__all__ = ["WIRE_TEXT_LIMIT", "wire_text"]

WIRE_TEXT_LIMIT: Final = 48
"""Characters of a wire string kept in a log line (the longest real encoding,
'rgb8; jpeg compressed bgr8', is 26)."""


def wire_text(value: Any, limit: int = WIRE_TEXT_LIMIT) -> str:
    """``value`` quoted and escaped like ``repr`` of a str, cut to ``limit`` characters.

    Non-printable and non-ASCII characters are escaped (``\\n``, ``\\x1b``, ``\\u202e``), so
    the result is one line of plain ASCII. A cut string ends in ``...`` and says how long the
    original was. Never raises: a field that cannot be turned into text is named by its type.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value[: limit * 4]).decode("utf-8", errors="replace")
        total = len(text) if len(value) <= limit * 4 else len(value)
    else:
        try:
            text = value if isinstance(value, str) else str(value)
        except Exception:  # noqa: BLE001 - a hostile __str__ must not break error reporting
            return f"<unprintable {type(value).__name__}>"
        total = len(text)
    # Escape only the head: escaping a 1 MB string to cut it afterwards would cost 1 MB of work.
    kept: list[str] = []
    used = 0
    for char in text[:limit]:
        piece = _escape(char)
        if used + len(piece) > limit:
            break
        kept.append(piece)
        used += len(piece)
    body = "".join(kept)
    if len(kept) < total:
        return f"'{body}...' ({total} chars)"
    return f"'{body}'"


def _escape(char: str) -> str:
    if char == "'" or char == "\\":
        return "\\" + char
    if char.isprintable() and char.isascii():
        return char
    return char.encode("unicode_escape").decode("ascii")
