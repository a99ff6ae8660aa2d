// Heatmap::render (eval/report/plot.hpp): cells coloured by value, with a colour bar.
#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "eval/report/font.hpp"
#include "eval/report/plot.hpp"

namespace dt {

Image Heatmap::render() const {
  DT_CHECK(rows > 0 && cols > 0 && values.size() == size_t(rows) * size_t(cols), "heatmap of ", rows, "x", cols,
           " with ", values.size(), " values");
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = 0, hi = 1;
  lo = v_min.value_or(lo), hi = v_max.value_or(hi);
  if (lo == hi) lo -= 0.5, hi += 0.5;

  // Cell j spans [x_first + (j − ½)·x_step, x_first + (j + ½)·x_step] on the x axis; likewise rows, top down.
  Axis x, y, v;
  x.lo = x_first - x_step / 2, x.hi = x_first + (cols - 0.5) * x_step;
  y.lo = y_first - y_step / 2, y.hi = y_first + (rows - 0.5) * y_step;
  v.lo = lo, v.hi = hi;

  // Room on the right for the colour bar and its tick labels.
  int vw = 0;
  for (const Tick& t : axis_ticks(v)) vw = std::max(vw, text_width(t.label, kTickScale));
  const int bar_w = 18, gap = 16;
  Image img(width, height);
  const Rect r = plot_area(width, height, y, gap + bar_w + 9 + vw + 10);
  x.px0 = r.x0, x.px1 = r.x1;
  y.px0 = r.y0, y.px1 = r.y1;  // row 0 at the top

  for (int i = 0; i < rows; ++i) {
    const int py0 = int(std::lround(r.y0 + double(i) * (r.y1 - r.y0) / rows));
    const int py1 = int(std::lround(r.y0 + double(i + 1) * (r.y1 - r.y0) / rows));
    for (int j = 0; j < cols; ++j) {
      const int px0 = int(std::lround(r.x0 + double(j) * (r.x1 - r.x0) / cols));
      const int px1 = int(std::lround(r.x0 + double(j + 1) * (r.x1 - r.x0) / cols));
      const double val = values[size_t(i) * cols + j];
      img.fill_rect(px0, py0, px1, py1, colormap(std::isfinite(val) ? (val - lo) / (hi - lo) : NAN));
    }
  }
  draw_axes(img, r, x, y, title, x_label, y_label, false);

  // Colour bar: the scale from lo (bottom) to hi (top), with the value ticks.
  const Rect bar{r.x1 + gap, r.y0, r.x1 + gap + bar_w, r.y1};
  for (int py = bar.y0; py < bar.y1; ++py)
    img.fill_rect(bar.x0, py, bar.x1, py + 1, colormap(double(bar.y1 - 1 - py) / std::max(1, bar.y1 - bar.y0 - 1)));
  v.px0 = bar.y1 - 1, v.px1 = bar.y0;
  for (const Tick& t : axis_ticks(v)) {
    const int py = int(std::lround(v.to_px(t.value)));
    img.fill_rect(bar.x1, py, bar.x1 + 5, py + 1, {60, 60, 60});
    draw_text(img, bar.x1 + 9, py - text_height(kTickScale) / 2, t.label, {0, 0, 0}, kTickScale);
  }
  return img;
}

}  // namespace dt
