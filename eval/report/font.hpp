// A tiny built-in bitmap font for plot labels: 5×8 cells (capitals and digits
// in rows 0–6, descenders in row 7), printable ASCII letters, digits and the
// usual punctuation. Characters it lacks draw as a hollow box.
#pragma once
#include <cstdint>
#include <string>

#include "eval/report/png.hpp"

namespace dt {

constexpr int kGlyphWidth = 5, kGlyphHeight = 8, kGlyphAdvance = 6;  // one blank column between glyphs

// Row `row` (0 = top) of character c: 5 bits, bit 4 is the leftmost pixel.
uint8_t glyph_row(char c, int row);

// Size in pixels of text drawn at integer scale s.
inline int text_width(const std::string& text, int s = 1) {
  return text.empty() ? 0 : (int(text.size()) * kGlyphAdvance - 1) * s;
}
inline int text_height(int s = 1) { return kGlyphHeight * s; }

// Left-to-right text whose cell's top-left corner is (x, y).
void draw_text(Image& img, int x, int y, const std::string& text, Color c, int s = 1);
// Text turned 90° counter-clockwise, reading bottom to top (a y-axis label):
// the run starts at bottom y and its glyph tops face column x.
void draw_text_up(Image& img, int x, int y, const std::string& text, Color c, int s = 1);

}  // namespace dt
