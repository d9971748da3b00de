"""User-controlled text (file, folder, set and run names; messages quoting them) shown literally in Streamlit.

Streamlit renders Markdown in st.markdown / st.caption / st.info / st.warning / st.error / st.success,
subheaders, progress texts and image captions, so a file named `[x](http://evil)` or `![](http://evil/i.png)`
would become a link or load an outside image. Every such string goes through one of these two.
"""

from __future__ import annotations

import re

# The characters that start Markdown inline syntax anywhere in a line (links, images, emphasis, code, HTML,
# entities, tables, LaTeX, strikethrough) and the block markers that act at the start of a line.
_INLINE = re.compile(r"([\\`*_\[\]()<>!|~$&#])")
_BLOCK_START = re.compile(r"^(\s*(?:\d+)?)([-+>.)])")
# An invisible word joiner goes where GFM would link a bare URL, www. name or e-mail address (it does so even
# when they are escaped) and where Streamlit would turn :shortcode: / :material/icon: into an emoji or icon
# (even inside code spans) or :red[text] into coloured text (even with the brackets escaped).
WORD_JOINER = "\u2060"
_JOIN_PLAIN = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)(?=\w)|(?<=:)(?=[\w+-]+(?:/[\w-]+)?:|[\w-]+\\\[)",
                         re.IGNORECASE)
_JOIN_LITERAL = re.compile(r"(?<=:)(?=[\w+-]+(?:/[\w-]+)?:)")


def _one_line(value) -> str:
    return " ".join(str(value).splitlines())


def literal(value) -> str:
    """`value` as an inline code span: shown character for character (no links, images, emphasis, LaTeX)."""
    text = _JOIN_LITERAL.sub(WORD_JOINER, _one_line(value))
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plain(value) -> str:
    """`value` as ordinary text: Markdown's active characters escaped, bare URLs and addresses not linked."""
    text = _INLINE.sub(r"\\\1", _one_line(value))
    text = _BLOCK_START.sub(r"\1\\\2", text)
    return _JOIN_PLAIN.sub(WORD_JOINER, text)
