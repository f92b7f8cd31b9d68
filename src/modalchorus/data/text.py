"""Checks on user-typed text (added captions, concepts, set names)."""

from __future__ import annotations

import unicodedata

__all__ = ["has_visible_character"]

#: Categories of characters that draw nothing on their own: separators (spaces), controls,
#: format characters (U+200B zero-width space, U+FEFF, U+2060 word joiner, ...), surrogates
#: and combining marks (they draw on a preceding character).
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Mn", "Me"})
#: Letters and symbols whose glyph is blank (Hangul fillers, the blank Braille pattern).
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_character(text: str) -> bool:
    """Whether some character of ``text`` draws something (unassigned code points count,
    so emoji newer than Python's Unicode data do)."""
    return any(
        c not in _BLANK_GLYPHS and unicodedata.category(c) not in _INVISIBLE_CATEGORIES
        for c in text
    )
