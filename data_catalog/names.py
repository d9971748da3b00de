"""File names as identifiers: bytes on disk, valid UTF-8 text in the store.

A POSIX file name is bytes; Python hands names that are not valid UTF-8 to
us as surrogate-escaped `str` (PEP 383), which DuckDB and Arrow refuse. The
one rule (docs/ARCHITECTURE.md "Identifiers"): a path is stored as its bytes
decoded as UTF-8, where a backslash is written `\\\\` and each byte that is not
part of valid UTF-8 is written `\\xHH` (lower-case hex, 80..ff). Valid UTF-8
names without a backslash are stored unchanged, and the form is reversible:
`text_to_path` gives back the `str` whose `os.fsencode` is the exact bytes, so
a stored path always opens the file it came from.

- `path_to_text(path)`: a file-system path (str, bytes or PathLike) -> stored text;
- `text_to_path(text)` / `text_to_bytes(text)`: stored text -> the path to open;
- `printable(text)`: any text on one line for a terminal (control characters escaped);
- `natural_key(name)`: the order of a video's frame files (`frame2` before `frame10`).
"""

from __future__ import annotations

import os
import re
import unicodedata

_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"\\(\\|x[89a-fA-F][0-9a-fA-F])")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_DIGIT_RUNS = re.compile(r"([0-9]+)")


def path_to_text(path) -> str:
    """The stored text of a file-system path (reversible; see the module docstring)."""
    s = os.fspath(path)
    if isinstance(s, str):
        if s.isascii() and "\\" not in s:
            return s
        try:
            raw = os.fsencode(s)
        except UnicodeEncodeError:  # a lone surrogate no file name can hold: keep its UTF-8 bytes
            raw = s.encode("utf-8", "surrogatepass")
    else:
        raw = s
    text = raw.decode("utf-8", "surrogateescape").replace("\\", "\\\\")
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def _unescape(m: re.Match) -> str:
    code = m.group(1)
    return "\\" if code == "\\" else chr(0xDC00 + int(code[1:], 16))


def text_to_bytes(text: str) -> bytes:
    """The exact bytes of a stored path. A backslash that starts no escape stays a backslash."""
    return _ESCAPE.sub(_unescape, text).encode("utf-8", "surrogateescape")


def text_to_path(text: str) -> str:
    """A stored path as the `str` the `os` module opens (`os.fsencode` of it is `text_to_bytes`)."""
    if text.isascii() and "\\" not in text:
        return text
    return os.fsdecode(text_to_bytes(text))


def printable(text) -> str:
    """`text` on one line for a terminal or a table cell: newlines, tabs and other control or
    format characters escaped (`\\n`, `\\x1b`, `\\u202e`), undecodable bytes as `\\xHH`."""
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        o = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x80 and unicodedata.category(ch) == "Cc":
            out.append(f"\\x{o:02x}")
        elif unicodedata.category(ch) in _UNPRINTABLE:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    return "".join(out)


def natural_key(name) -> tuple:
    """Sort key of a file name in natural order: runs of digits compare as numbers, the rest without case
    (`frame2.png` < `frame10.png` < `Frame11.png`); the name itself breaks ties, so the order is total.
    Frames of a frame folder and of a DeepfakeBench video are taken in this order."""
    text = os.fspath(name) if not isinstance(name, str) else name
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    parts = _DIGIT_RUNS.split(text)  # text, digits, text, digits, ..., text: the types alternate
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)) + (text,)
