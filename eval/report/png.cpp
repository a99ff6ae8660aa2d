#include "eval/report/png.hpp"

#include <png.h>

#include <algorithm>
#include <string>

#include "core/error.hpp"
#include "core/files.hpp"

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

// libpng reports errors through this callback, which must not return:
// it keeps the message and jumps back to encode_png's setjmp.
[[noreturn]] void on_png_error(png_structp png, png_const_charp msg) {
  *static_cast<std::string*>(png_get_error_ptr(png)) = msg;
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // nothing libpng warns about here matters to a plot

void append_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& img) {
  DT_CHECK(img.width > 0 && img.height > 0 && img.rgb.size() == size_t(img.width) * img.height * 3);
  const size_t row = size_t(img.width) * 3;
  std::vector<png_bytep> rows(size_t(img.height));
  for (int y = 0; y < img.height; ++y) rows[size_t(y)] = const_cast<png_bytep>(&img.rgb[size_t(y) * row]);
  std::vector<uint8_t> out;
  std::string error;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    fail("libpng: cannot create a PNG writer (out of memory?)");
  }
  // Everything above outlives the jump: only libpng's own frames are unwound.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fail("libpng: cannot encode a ", img.width, "x", img.height, " image: ", error);
  }
  png_set_write_fn(png, &out, append_bytes, nullptr);
  png_set_IHDR(png, info, png_uint_32(img.width), png_uint_32(img.height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  // Filter 0 on every row: plots are flat colours, which deflate well unfiltered.
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
  png_set_compression_level(png, 9);
  png_set_rows(png, info, rows.data());
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

void write_png(const std::string& path, const Image& img) {
  const std::vector<uint8_t> bytes = encode_png(img);
  write_file_atomically(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace dt
