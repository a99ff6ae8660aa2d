#include "eval/report/png.hpp"

#include <zlib.h>

#include <algorithm>
#include <fstream>

#include "core/error.hpp"

namespace dt {

Image::Image(int w, int h, Color fill) : width(w), height(h), rgb(size_t(w) * size_t(h) * 3) {
  DT_CHECK(w > 0 && h > 0, "image size ", w, "x", h);
  fill_rect(0, 0, w, h, fill);
}

void Image::set(int x, int y, Color c) {
  if (!inside(x, y)) return;
  uint8_t* p = &rgb[(size_t(y) * width + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

Color Image::at(int x, int y) const {
  const uint8_t* p = &rgb[(size_t(y) * width + x) * 3];
  return {p[0], p[1], p[2]};
}

void Image::fill_rect(int x0, int y0, int x1, int y1, Color c) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, width), y1 = std::min(y1, height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) set(x, y, c);
}

namespace {

void put_u32(std::vector<uint8_t>& out, uint32_t v) {  // PNG integers are big-endian
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

// length, type, data, crc32(type + data)
void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  put_u32(out, uint32_t(data.size()));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const uLong crc = crc32(0L, out.data() + type_at, uInt(4 + data.size()));
  put_u32(out, uint32_t(crc));
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& img) {
  DT_CHECK(img.width > 0 && img.height > 0 && img.rgb.size() == size_t(img.width) * img.height * 3);
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

  std::vector<uint8_t> ihdr;
  put_u32(ihdr, uint32_t(img.width));
  put_u32(ihdr, uint32_t(img.height));
  // bit depth 8, colour type 2 (RGB), compression 0, filter method 0, no interlace
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  put_chunk(out, "IHDR", ihdr);

  // Each scanline is a filter-type byte (0: none) followed by its pixels.
  const size_t row = size_t(img.width) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * img.height);
  for (int y = 0; y < img.height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), img.rgb.begin() + y * row, img.rgb.begin() + (y + 1) * row);
  }
  uLongf zsize = compressBound(uLong(raw.size()));
  std::vector<uint8_t> idat(zsize);
  const int rc = compress2(idat.data(), &zsize, raw.data(), uLong(raw.size()), Z_BEST_COMPRESSION);
  DT_CHECK(rc == Z_OK, "zlib compress2 returned ", rc);
  idat.resize(zsize);
  put_chunk(out, "IDAT", idat);
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, const Image& img) {
  const std::vector<uint8_t> bytes = encode_png(img);
  std::ofstream f(path, std::ios::binary);
  if (!f) fail("cannot write ", path, " (does its directory exist?)");
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f.flush()) fail("cannot write ", path, " (disk full?)");
}

}  // namespace dt
