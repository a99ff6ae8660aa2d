// The RGB image the plots and fonts draw into, and its PNG encoding by
// libpng: 8-bit RGB, no interlace, filter 0 on every row.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dt {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Color&, const Color&) = default;
};

// width × height pixels, row-major, 3 bytes (R, G, B) per pixel.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;

  Image() = default;
  Image(int w, int h, Color fill = {255, 255, 255});
  bool inside(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  void set(int x, int y, Color c);  // pixels outside the image are ignored
  Color at(int x, int y) const;  // (x, y) must be inside
  void fill_rect(int x0, int y0, int x1, int y1, Color c);  // [x0, x1) × [y0, y1), clipped
};

// The PNG file bytes: signature, IHDR, IDAT (filter 0 on every row), IEND.
std::vector<uint8_t> encode_png(const Image& img);
// Writes encode_png(img) to path atomically (core/files.hpp: a temporary,
// fsync, rename); a one-line dt::Error naming the file when it cannot.
void write_png(const std::string& path, const Image& img);

}  // namespace dt
