// The plot helpers: axis ticks, the built-in font, and rendered line plots
// and heatmaps holding what they were given.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "eval/report/font.hpp"
#include "eval/report/plot.hpp"

namespace dt {
namespace {

std::vector<std::string> labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> out;
  for (const Tick& t : ticks)
    if (!t.label.empty()) out.push_back(t.label);
  return out;
}

TEST(PlotAxis, LinearTicksAreRoundStepsInsideTheRange) {
  EXPECT_EQ(labels(axis_ticks(Axis{0, 1})), (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
  EXPECT_EQ(labels(axis_ticks(Axis{-3, 12})),
            (std::vector<std::string>{"-2", "0", "2", "4", "6", "8", "10", "12"}));
  const std::vector<Tick> t = axis_ticks(Axis{3.5843, 3.6017});
  ASSERT_GE(t.size(), 4u);
  for (const Tick& k : t) {
    EXPECT_GE(k.value, 3.5843 - 1e-9);
    EXPECT_LE(k.value, 3.6017 + 1e-9);
  }
}

TEST(PlotAxis, LogTicksLabelDecades) {
  Axis a{1, 4096, true};
  EXPECT_EQ(labels(axis_ticks(a)), (std::vector<std::string>{"1", "10", "100", "1000"}));
  Axis b{1, 64, true};  // under two decades: 1, 2, 5 × 10^k
  EXPECT_EQ(labels(axis_ticks(b)), (std::vector<std::string>{"1", "2", "5", "10", "20", "50"}));
  EXPECT_EQ(tick_label(1e7, 1e7), "1e7");
}

TEST(PlotFont, PrintableAsciiHasGlyphsAndTextHasInk) {
  const std::string needed = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,:;-+=()[]/_%'\"!?<>*#|^~";
  uint8_t box[kGlyphHeight];
  for (int r = 0; r < kGlyphHeight; ++r) box[r] = glyph_row('\x01', r);  // an unknown character: the box
  for (char c : needed) {
    bool is_box = true, ink = false;
    for (int r = 0; r < kGlyphHeight; ++r) is_box &= glyph_row(c, r) == box[r], ink |= glyph_row(c, r) != 0;
    EXPECT_FALSE(is_box) << "'" << c << "'";
    EXPECT_TRUE(ink) << "'" << c << "'";
  }
  Image img(100, 20);
  draw_text(img, 2, 2, "NLL 3.5", {0, 0, 0}, 2);
  int dark = 0;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 100; ++x) dark += img.at(x, y) == Color{0, 0, 0};
  EXPECT_GT(dark, 50);
  EXPECT_EQ(text_width("NLL 3.5", 2), (7 * kGlyphAdvance - 1) * 2);
}

int count(const Image& img, Color c) {
  int n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) n += img.at(x, y) == c;
  return n;
}

TEST(LinePlot, DrawsEverySeriesInItsColour) {
  LinePlot p;
  p.title = "Loss";
  p.x_label = "step";
  p.y_label = "loss";
  p.log_x = true;
  Series a{"a", {1, 10, 100}, {3, 2, 1}}, b{"b", {1, 10, 100}, {1, 2, 3}};
  b.color = Color{0, 200, 0};
  p.series = {a, b};
  const Image img = p.render();
  EXPECT_EQ(img.width, 960);
  EXPECT_EQ(img.height, 600);
  EXPECT_GT(count(img, palette_color(0)), 500);  // a long 2-pixel line
  EXPECT_GT(count(img, Color{0, 200, 0}), 500);
  // A point that cannot be shown (≤ 0 on a log axis) is skipped, not a crash.
  p.series[0].x[0] = 0;
  EXPECT_GT(count(p.render(), palette_color(0)), 200);
}

TEST(Heatmap, CellsTakeTheColourScale) {
  Heatmap h;
  h.rows = 2, h.cols = 3;
  h.values = {0, 1, 2, 3, 4, NAN};
  const Image img = h.render();
  EXPECT_GT(count(img, colormap(0.0)), 1000);  // the lowest cell (and the colour bar's end)
  EXPECT_GT(count(img, colormap(1.0)), 1000);
  EXPECT_GT(count(img, colormap(NAN)), 1000);  // the missing value, grey
  EXPECT_EQ(colormap(-5.0), colormap(0.0));
}

}  // namespace
}  // namespace dt
