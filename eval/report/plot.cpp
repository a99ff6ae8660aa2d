#include "eval/report/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "eval/report/font.hpp"

namespace dt {

namespace {

constexpr Color kBlack{0, 0, 0}, kGrid{225, 225, 225}, kFrame{60, 60, 60}, kWhite{255, 255, 255};
constexpr int kPad = 10, kTickLen = 5;

double axis_value(const Axis& a, double v) { return a.log ? std::log10(v) : v; }

// [lo, hi] of the valid values in vs, widened so it is never empty.
void data_range(const std::vector<double>& vs, bool log, double& lo, double& hi) {
  lo = INFINITY, hi = -INFINITY;
  for (double v : vs)
    if (std::isfinite(v) && (!log || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = log ? 1 : 0, hi = log ? 10 : 1;
  if (lo == hi) {
    if (log) lo /= 2, hi *= 2;
    else lo -= std::max(0.5, std::abs(lo) * 0.05), hi += std::max(0.5, std::abs(hi) * 0.05);
  }
}

}  // namespace

double Axis::to_px(double v) const {
  const double a = axis_value(*this, lo), b = axis_value(*this, hi);
  return px0 + (axis_value(*this, v) - a) / (b - a) * (px1 - px0);
}

bool Axis::valid(double v) const { return std::isfinite(v) && (!log || v > 0); }

std::string tick_label(double v, double step) {
  char buf[32];
  if (std::abs(v) < std::abs(step) * 1e-9) v = 0;  // no "-0.0" from rounding
  const double av = std::abs(v);
  if (av != 0 && (av >= 1e6 || av < 1e-4)) {
    const int e = int(std::floor(std::log10(av) + 1e-9));
    std::snprintf(buf, sizeof buf, "%ge%d", v / std::pow(10.0, e), e);
  } else {
    const int decimals = std::max(0, int(std::ceil(-std::log10(std::abs(step)) - 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 6), v);
  }
  return buf;
}

std::vector<Tick> axis_ticks(const Axis& a) {
  std::vector<Tick> ticks;
  const double lo = std::min(a.lo, a.hi), hi = std::max(a.lo, a.hi);
  const double eps = (hi - lo) * 1e-9;
  if (a.log) {
    // Every 10^k labelled; over less than two decades also 2 and 5 × 10^k, under one decade every m × 10^k.
    const double decades = std::log10(hi / lo);
    const int k0 = int(std::floor(std::log10(lo))), k1 = int(std::ceil(std::log10(hi)));
    for (int k = k0; k <= k1; ++k)
      for (int m = 1; m <= 9; ++m) {
        const double v = m * std::pow(10.0, k);
        if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
        const bool label = m == 1 || decades < 1 || (decades < 2 && (m == 2 || m == 5));
        ticks.push_back({v, label ? tick_label(v, std::pow(10.0, k)) : ""});
      }
    return ticks;
  }
  // Linear: the largest step of 1, 2 or 5 × 10^k that cuts the range into at least 4 parts.
  double step = std::pow(10.0, std::ceil(std::log10(hi - lo)));
  for (int i = 0; (hi - lo) / step < 4; ++i) step /= i % 3 == 1 ? 2.5 : 2;
  for (int64_t k = int64_t(std::ceil((lo - eps) / step)); k * step <= hi + eps; ++k)
    ticks.push_back({double(k) * step, tick_label(double(k) * step, step)});
  return ticks;
}

Color palette_color(int i) {
  static constexpr Color kPalette[] = {{31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {255, 127, 14},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {23, 190, 207}};
  return kPalette[size_t(i) % (sizeof kPalette / sizeof kPalette[0])];
}

Color colormap(double t) {
  // Piecewise-linear through a few stops; perceptually ordered light to dark is enough here.
  static constexpr Color kStops[] = {{40, 20, 90}, {50, 80, 150}, {30, 140, 140}, {60, 185, 95}, {245, 230, 60}};
  constexpr int n = sizeof kStops / sizeof kStops[0];
  if (!std::isfinite(t)) return {160, 160, 160};
  t = std::clamp(t, 0.0, 1.0) * (n - 1);
  const int i = std::min(int(t), n - 2);
  const double f = t - i;
  auto mix = [&](uint8_t a, uint8_t b) { return uint8_t(std::lround(a + (b - a) * f)); };
  return {mix(kStops[i].r, kStops[i + 1].r), mix(kStops[i].g, kStops[i + 1].g), mix(kStops[i].b, kStops[i + 1].b)};
}

void draw_line(Image& img, double x0, double y0, double x1, double y1, Color c, int thickness, const Rect& clip) {
  const int steps = int(std::ceil(std::max(std::abs(x1 - x0), std::abs(y1 - y0)))) + 1;
  const int before = (thickness - 1) / 2;
  for (int s = 0; s <= steps; ++s) {
    const double f = double(s) / steps;
    const int cx = int(std::lround(x0 + (x1 - x0) * f)) - before, cy = int(std::lround(y0 + (y1 - y0) * f)) - before;
    for (int dy = 0; dy < thickness; ++dy)
      for (int dx = 0; dx < thickness; ++dx)
        if (clip.contains(cx + dx, cy + dy)) img.set(cx + dx, cy + dy, c);
  }
}

Rect plot_area(int width, int height, const Axis& y, int right_margin) {
  int tick_w = 0;
  for (const Tick& t : axis_ticks(y)) tick_w = std::max(tick_w, text_width(t.label, kTickScale));
  const int left = kPad + text_height(kLabelScale) + kPad + tick_w + kTickLen + 4;
  const int top = kPad + text_height(kTitleScale) + kPad + 4;
  const int bottom = kTickLen + 4 + text_height(kTickScale) + kPad + text_height(kLabelScale) + kPad;
  DT_CHECK(left + right_margin + 50 < width && top + bottom + 50 < height, "plot of ", width, "x", height, " too small");
  return {left, top, width - right_margin, height - bottom};
}

void draw_axes(Image& img, const Rect& r, const Axis& x, const Axis& y, const std::string& title,
               const std::string& x_label, const std::string& y_label, bool grid) {
  const std::vector<Tick> xt = axis_ticks(x), yt = axis_ticks(y);
  if (grid) {
    for (const Tick& t : xt)
      if (!t.label.empty()) img.fill_rect(int(std::lround(x.to_px(t.value))), r.y0, int(std::lround(x.to_px(t.value))) + 1, r.y1, kGrid);
    for (const Tick& t : yt)
      if (!t.label.empty()) img.fill_rect(r.x0, int(std::lround(y.to_px(t.value))), r.x1, int(std::lround(y.to_px(t.value))) + 1, kGrid);
  }
  // Frame: one pixel just outside the area on each side.
  img.fill_rect(r.x0 - 1, r.y0 - 1, r.x1 + 1, r.y0, kFrame);
  img.fill_rect(r.x0 - 1, r.y1, r.x1 + 1, r.y1 + 1, kFrame);
  img.fill_rect(r.x0 - 1, r.y0 - 1, r.x0, r.y1 + 1, kFrame);
  img.fill_rect(r.x1, r.y0 - 1, r.x1 + 1, r.y1 + 1, kFrame);

  const int th = text_height(kTickScale);
  for (const Tick& t : xt) {
    const int px = int(std::lround(x.to_px(t.value)));
    const int len = t.label.empty() ? kTickLen - 2 : kTickLen;
    img.fill_rect(px, r.y1 + 1, px + 1, r.y1 + 1 + len, kFrame);
    if (!t.label.empty()) draw_text(img, px - text_width(t.label, kTickScale) / 2, r.y1 + kTickLen + 4, t.label, kBlack, kTickScale);
  }
  int label_x = r.x0;
  for (const Tick& t : yt) {
    const int py = int(std::lround(y.to_px(t.value)));
    const int len = t.label.empty() ? kTickLen - 2 : kTickLen;
    img.fill_rect(r.x0 - 1 - len, py, r.x0 - 1, py + 1, kFrame);
    if (t.label.empty()) continue;
    const int tx = r.x0 - kTickLen - 4 - text_width(t.label, kTickScale);
    draw_text(img, tx, py - th / 2, t.label, kBlack, kTickScale);
    label_x = std::min(label_x, tx);
  }
  // Axis labels centred on their axis; the title centred on the image.
  const int lw = text_width(x_label, kLabelScale);
  draw_text(img, (r.x0 + r.x1 - lw) / 2, r.y1 + kTickLen + 4 + th + kPad, x_label, kBlack, kLabelScale);
  const int yx = std::max(kPad / 2, label_x - kPad - text_height(kLabelScale));
  draw_text_up(img, yx, (r.y0 + r.y1 + text_width(y_label, kLabelScale)) / 2, y_label, kBlack, kLabelScale);
  draw_text(img, (img.width - text_width(title, kTitleScale)) / 2, kPad, title, kBlack, kTitleScale);
}

Image LinePlot::render() const {
  std::vector<double> xs, ys;
  for (const Series& s : series) {
    DT_CHECK(s.x.size() == s.y.size(), "series '", s.label, "': ", s.x.size(), " x values, ", s.y.size(), " y values");
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  Axis x, y;
  x.log = log_x, y.log = log_y;
  data_range(xs, log_x, x.lo, x.hi);
  data_range(ys, log_y, y.lo, y.hi);
  if (log_y) {
    const double pad = std::pow(y.hi / y.lo, 0.05);
    y.lo /= pad, y.hi *= pad;
  } else {
    const double pad = (y.hi - y.lo) * 0.05;
    y.lo -= pad, y.hi += pad;
  }
  x.lo = x_min.value_or(x.lo), x.hi = x_max.value_or(x.hi);
  y.lo = y_min.value_or(y.lo), y.hi = y_max.value_or(y.hi);

  Image img(width, height, kWhite);
  const Rect r = plot_area(width, height, y, 2 * kPad);
  x.px0 = r.x0, x.px1 = r.x1 - 1;
  y.px0 = r.y1 - 1, y.px1 = r.y0;
  draw_axes(img, r, x, y, title, x_label, y_label, true);

  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const Color c = s.color.value_or(palette_color(int(i)));
    bool have_prev = false;
    double px = 0, py = 0;
    for (size_t j = 0; j < s.x.size(); ++j) {
      if (!x.valid(s.x[j]) || !y.valid(s.y[j])) {
        have_prev = false;
        continue;
      }
      const double qx = x.to_px(s.x[j]), qy = y.to_px(s.y[j]);
      draw_line(img, have_prev ? px : qx, have_prev ? py : qy, qx, qy, c, 2, r);
      px = qx, py = qy, have_prev = true;
    }
  }

  // Legend in the top-right corner of the plot area, for labelled series.
  int n = 0, lw = 0;
  for (const Series& s : series)
    if (!s.label.empty()) ++n, lw = std::max(lw, text_width(s.label, kLabelScale));
  if (n > 0) {
    const int row = text_height(kLabelScale) + 8, bw = 30 + lw + 2 * kPad, bh = n * row + kPad;
    const Rect box{r.x1 - bw - kPad, r.y0 + kPad, r.x1 - kPad, r.y0 + kPad + bh};
    img.fill_rect(box.x0, box.y0, box.x1, box.y1, kFrame);
    img.fill_rect(box.x0 + 1, box.y0 + 1, box.x1 - 1, box.y1 - 1, kWhite);
    int k = 0;
    for (size_t i = 0; i < series.size(); ++i) {
      if (series[i].label.empty()) continue;
      const int ty = box.y0 + kPad / 2 + 4 + k++ * row;
      const int mid = ty + text_height(kLabelScale) / 2;
      draw_line(img, box.x0 + kPad, mid, box.x0 + kPad + 20, mid, series[i].color.value_or(palette_color(int(i))), 3, box);
      draw_text(img, box.x0 + kPad + 30, ty, series[i].label, kBlack, kLabelScale);
    }
  }
  return img;
}

}  // namespace dt
