// The byte collectives of Communicator, on its tensor collectives: bytes
// travel packed in i32 words, each rank's padded to the longest.
#include "comm/communicator.hpp"

#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace dt {

namespace {

int64_t words_for(int64_t bytes) { return (bytes + 3) / 4; }

int32_t checked_length(const std::string& s, const char* op) {
  if (s.size() > size_t(std::numeric_limits<int32_t>::max()))
    fail(op, ": ", s.size(), " bytes is more than 2^31-1 bytes; expected metadata, not bulk data");
  return int32_t(s.size());
}

}  // namespace

std::vector<std::string> Communicator::gather_bytes(const std::string& mine, int root) {
  const bool is_root = rank() == root;
  int32_t len = checked_length(mine, "gather_bytes");
  std::vector<int32_t> lens(is_root ? size_t(size()) : 0);
  gather(is_root ? cpu_i32(lens.data(), {size()}) : Tensor(), cpu_i32(&len, {1}), root);
  // Every rank sends the same number of words: the longest text's.
  const int64_t words = words_for(int64_t(all_reduce_max(double(len))));
  std::vector<std::string> out;
  if (words == 0) {
    if (is_root) out.assign(size_t(size()), "");
    return out;
  }
  std::vector<int32_t> send(size_t(words), 0), all(is_root ? size_t(words * size()) : 0);
  std::memcpy(send.data(), mine.data(), mine.size());
  gather(is_root ? cpu_i32(all.data(), {words * size()}) : Tensor(), cpu_i32(send.data(), {words}), root);
  if (!is_root) return out;
  for (int r = 0; r < size(); ++r)
    out.emplace_back(reinterpret_cast<const char*>(all.data() + r * words), size_t(lens[size_t(r)]));
  return out;
}

std::string Communicator::broadcast_bytes(const std::string& text, int root) {
  const bool is_root = rank() == root;
  const int64_t len = int64_t(all_reduce_max(is_root ? double(checked_length(text, "broadcast_bytes")) : 0.0));
  if (len == 0) return "";
  std::vector<int32_t> words(size_t(words_for(len)), 0);
  if (is_root) std::memcpy(words.data(), text.data(), text.size());
  broadcast(cpu_i32(words.data(), {int64_t(words.size())}), root);
  return std::string(reinterpret_cast<const char*>(words.data()), size_t(len));
}

}  // namespace dt
