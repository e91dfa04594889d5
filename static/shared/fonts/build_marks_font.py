"""Build tokenwheel-marks.woff: the two whitespace symbols every page shows
that common system fonts lack (U+2420 SYMBOL FOR SPACE "␠" and U+240D
SYMBOL FOR CARRIAGE RETURN "␍"). Without it a Debian or ChromeOS machine
draws an empty box where a token's leading space should be.

Each glyph is the conventional pair of small capitals ("SP", "CR") set on a
diagonal, taken from DejaVu Sans Mono (Bitstream Vera licence: modified
copies may be redistributed under another name; see LICENSE-DejaVu.txt).
The page loads it with `unicode-range`, so it is used only for these two
characters and only when the text contains them.

Rebuild (a developer tool, not a dependency of the app):
    pip install --target /tmp/ft fonttools
    PYTHONPATH=/tmp/ft python static/shared/fonts/build_marks_font.py
"""

from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.transformPen import TransformPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont

SOURCE = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
OUT = Path(__file__).with_name("tokenwheel-marks.woff")
FAMILY = "Token Wheel Marks"
SCALE = 0.68

source = TTFont(SOURCE)
glyph_set = source.getGlyphSet()
cmap = source.getBestCmap()
upem = source["head"].unitsPerEm
advance = source["hmtx"][cmap[ord("A")]][0]
ascent, descent = source["hhea"].ascent, source["hhea"].descent


def pair(first: str, second: str):
    """Two letters, small, the first high on the left and the second low on the right."""
    pen = TTGlyphPen(None)
    glyph_set[cmap[ord(first)]].draw(TransformPen(pen, (SCALE, 0, 0, SCALE, -60, 560)))
    glyph_set[cmap[ord(second)]].draw(TransformPen(pen, (SCALE, 0, 0, SCALE, advance * (1 - SCALE) + 60, -40)))
    return pen.glyph()


glyphs = {".notdef": TTGlyphPen(None).glyph(), "uni2420": pair("S", "P"), "uni240D": pair("C", "R")}
order = list(glyphs)
fb = FontBuilder(upem, isTTF=True)
fb.setupGlyphOrder(order)
fb.setupCharacterMap({0x2420: "uni2420", 0x240D: "uni240D"})
fb.setupGlyf(glyphs)
fb.setupHorizontalMetrics({name: (advance, 0) for name in order})
fb.setupHorizontalHeader(ascent=ascent, descent=descent)
fb.setupNameTable(
    {
        "familyName": FAMILY,
        "styleName": "Regular",
        "copyright": "Copyright (c) 2003 by Bitstream, Inc. All Rights Reserved. Bitstream Vera is a trademark of "
        "Bitstream, Inc. DejaVu changes are in public domain. Glyphs derived from DejaVu Sans Mono, renamed as "
        "the Bitstream Vera licence requires.",
        "licenseDescription": "Bitstream Vera licence: see LICENSE-DejaVu.txt",
    }
)
fb.setupOS2(sTypoAscender=ascent, sTypoDescender=descent, usWinAscent=ascent, usWinDescent=-descent)
fb.setupPost()
fb.font.flavor = "woff"
fb.save(OUT)
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
