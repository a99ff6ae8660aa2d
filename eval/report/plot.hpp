// Small raster plots written as PNG (eval/report/png.hpp) with the built-in font
// (eval/report/font.hpp): line plots with several series, linear or log axes, and
// heatmaps with a colour scale. No dependencies beyond zlib.
//
//   LinePlot p;
//   p.title = "Loss"; p.x_label = "step"; p.y_label = "loss"; p.log_x = true;
//   p.series.push_back({"diff", steps, losses});
//   p.save("loss.png");
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "eval/report/png.hpp"

namespace dt {

struct Series {
  std::string label;           // legend entry; empty = not in the legend
  std::vector<double> x, y;    // same length; a non-finite point (or ≤ 0 on a log axis) breaks the line
  std::optional<Color> color;  // default: palette_color(index of the series)
};

struct LinePlot {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<Series> series;
  std::optional<double> x_min, x_max, y_min, y_max;  // default: the data's range (y padded by 5%)
  int width = 960, height = 600;

  Image render() const;
  void save(const std::string& path) const { write_png(path, render()); }
};

struct Heatmap {
  std::string title, x_label, y_label;
  int rows = 0, cols = 0;
  std::vector<double> values;       // rows × cols, row-major, row 0 drawn at the top; non-finite cells grey
  double x_first = 0, x_step = 1;   // axis value of column j: x_first + j·x_step
  double y_first = 0, y_step = 1;   // axis value of row i:    y_first + i·y_step
  std::optional<double> v_min, v_max;  // colour scale range; default: the data's range
  int width = 800, height = 640;

  Image render() const;
  void save(const std::string& path) const { write_png(path, render()); }
};

// ---- building blocks, shared by the plots above ------------------------------

struct Rect {
  int x0, y0, x1, y1;  // [x0, x1) × [y0, y1)
  bool contains(int x, int y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
};

// A data range [lo, hi] mapped onto the pixel span px0 → px1 (px1 < px0 for a
// y axis, whose values grow upwards); log: log10 spacing, lo > 0.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double px0 = 0, px1 = 1;
  double to_px(double v) const;
  bool valid(double v) const;  // finite, and > 0 on a log axis
};

struct Tick {
  double value;
  std::string label;  // empty: a minor tick (no label, no grid line)
};
// About 5–8 labelled ticks at 1, 2, 5 × 10^k steps; on a log axis, each decade
// labelled (with 2..9 × 10^k as minor ticks, labelled too when the range spans
// less than two decades).
std::vector<Tick> axis_ticks(const Axis& a);
std::string tick_label(double v, double step);  // v with as many decimals as step needs

Color palette_color(int i);  // distinct colours for series 0, 1, 2, ...
Color colormap(double t);    // t in [0, 1]: dark blue → teal → green → yellow

// Line of the given thickness between pixel positions, drawing only inside clip.
void draw_line(Image& img, double x0, double y0, double x1, double y1, Color c, int thickness, const Rect& clip);

// The plot area of a width × height image: room on the left for the y
// axis' tick labels (from its ticks) and label, above for the title, below for
// the x axis, and right_margin pixels on the right.
Rect plot_area(int width, int height, const Axis& y, int right_margin);

// Everything around a plot area: grid lines at labelled ticks (when grid), the
// frame, tick marks and labels, axis labels and the title.
void draw_axes(Image& img, const Rect& area, const Axis& x, const Axis& y, const std::string& title,
               const std::string& x_label, const std::string& y_label, bool grid);

// Text sizes used by the plots: title, and labels / ticks.
constexpr int kTitleScale = 2, kLabelScale = 2, kTickScale = 2;

}  // namespace dt
