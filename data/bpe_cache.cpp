#include "data/bpe_cache.hpp"

#include <atomic>
#include <memory>

namespace dt {
namespace {
std::atomic<uint64_t> next_owner{1};
}  // namespace

BpeCache::BpeCache() : owner_(next_owner++) {}

BpeCache::Entry* BpeCache::thread_table() {
  thread_local std::unique_ptr<Entry[]> table(new Entry[kEntries]);
  return table.get();
}

}  // namespace dt
