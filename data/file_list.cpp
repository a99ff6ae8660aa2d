#include "data/file_list.hpp"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace dt {
namespace {

void add_dir(const std::string& dir, bool recurse, const std::string& suffix, std::vector<std::string>& out) {
  std::vector<std::string> found;
  std::error_code ec;
  auto walk = [&](auto it) {
    for (decltype(it) end; !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (it->is_regular_file(ec2) && it->path().filename().string().ends_with(suffix))
        found.push_back(it->path().string());
    }
    if (ec) fail(dir, ": cannot list directory: ", ec.message());
  };
  if (recurse) walk(fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec));
  else walk(fs::directory_iterator(dir, ec));
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

}  // namespace

std::vector<std::string> list_files(const std::string& spec, bool recurse, const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_regular_file(spec, ec)) return {spec};
  if (fs::is_directory(spec, ec)) {
    add_dir(spec, recurse, suffix, out);
    if (out.empty())
      fail(spec, ": directory holds no ", suffix.empty() ? "regular files" : "'*" + suffix + "' files");
    return out;
  }
  if (spec.find_first_of("*?[") == std::string::npos) fail(spec, ": no such file or directory");
  glob_t g{};
  int rc = ::glob(spec.c_str(), 0, nullptr, &g);
  std::vector<std::string> matches;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  std::sort(matches.begin(), matches.end());
  for (const auto& m : matches) {
    if (fs::is_directory(m, ec)) add_dir(m, recurse, suffix, out);
    else if (fs::is_regular_file(m, ec) && m.ends_with(suffix)) out.push_back(m);
  }
  if (out.empty()) fail(spec, ": glob matches no ", suffix.empty() ? "regular files" : "'*" + suffix + "' files");
  return out;
}

}  // namespace dt
