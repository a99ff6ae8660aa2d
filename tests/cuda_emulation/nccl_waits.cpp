// Emulated NCCL, part 5 (see nccl_emulation.hpp): what a rank waits for, and
// when waiting must end.
//
// Every blocked device op publishes, in its rank's RankState, a text ("blocked
// in group {…}, waiting for rank 1 to post its matching recv") and, in the
// waits matrix, the peers that must post an operation before it can continue
// (an edge of the wait graph). Waiting for data that a posted peer operation
// will deliver is no edge: that peer is running the matching operation. An
// edge r → p holds p's progress counter as r saw it before deciding, so when p
// has posted anything since, the edge no longer counts (r may not have polled
// again yet, its device thread busy with a long kernel).
//
// The rules, applied by each blocked rank on each poll:
// - a peer marked failed or aborted fails this rank's waiting operations, and
//   so does a peer that destroyed the communicator while this rank waits for
//   it to post something;
// - a cycle of edges reachable from this rank whose ranks have all shown no
//   progress for kDeadlockSeconds is a deadlock: each rank on it waits for the
//   next to post an operation, and none can, since its own stream is stuck
//   behind the operation that waits (a slow peer posts no edge back, so it
//   never closes a cycle);
// - no progress on any rank for DIFFTRON_EMU_NCCL_TIMEOUT seconds ends the
//   wait too (the backstop for waits the graph cannot see, such as a cycle
//   through another communicator or a peer that never posts).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "nccl_emulation.hpp"

namespace emu::nccl {
namespace {

void publish(Comm& c) {
  if (c.async_error != ncclSuccess || c.aborted) return;
  std::string text;
  std::vector<uint64_t> on(size_t(c.nranks), 0);
  for (const auto& [id, w] : c.blocked) {
    text += (text.empty() ? "" : "; and ") + w.text;
    for (size_t p = 0; p < on.size(); ++p) on[p] = std::max(on[p], w.on[p]);  // the newest snapshot
  }
  if (text != c.published_text) publish_text(c, text);
  for (int p = 0; p < c.nranks; ++p)
    if (on[size_t(p)] != c.published_on[size_t(p)]) c.waits(c.rank, p).store(on[size_t(p)], std::memory_order_release);
  c.published_on = on;
}

// Whether rank r waits for rank p to post an operation, and p has not moved since r found so.
bool edge(const Comm& c, int r, int p) {
  const uint64_t e = c.waits(r, p).load(std::memory_order_acquire);
  return e != 0 && e - 1 == c.state(p).progress.load(std::memory_order_acquire);
}

// Refreshes when each rank's progress counter last changed.
void watch(Comm& c, Clock::time_point now) {
  Watch& w = c.watch;
  const size_t n = size_t(c.nranks);
  if (!w.active) w = Watch{true, std::vector<uint64_t>(n), std::vector<Clock::time_point>(n, now)};
  for (int q = 0; q < c.nranks; ++q) {
    const uint64_t v = c.state(q).progress.load(std::memory_order_acquire);
    if (v != w.seen[size_t(q)]) w.seen[size_t(q)] = v, w.changed[size_t(q)] = now;
  }
}

double quiet_seconds(const Comm& c, const std::vector<int>& ranks, Clock::time_point now) {
  double quiet = 1e300;
  for (int q : ranks)
    quiet = std::min(quiet, std::chrono::duration<double>(now - c.watch.changed[size_t(q)]).count());
  return quiet;
}

// A cycle of the published wait graph reachable from `from` (its ranks in order), or {}.
std::vector<int> find_cycle(const Comm& c, int from) {
  const int n = c.nranks;
  std::vector<int> color(size_t(n), 0), path;  // 0 unseen, 1 on the path, 2 done
  std::vector<int> cycle;
  auto dfs = [&](auto& self, int r) -> bool {
    color[size_t(r)] = 1;
    path.push_back(r);
    for (int p = 0; p < n; ++p) {
      if (!edge(c, r, p)) continue;
      if (color[size_t(p)] == 1) {
        cycle.assign(std::find(path.begin(), path.end(), p), path.end());
        return true;
      }
      if (color[size_t(p)] == 0 && self(self, p)) return true;
    }
    path.pop_back();
    color[size_t(r)] = 2;
    return false;
  };
  dfs(dfs, from);
  return cycle;
}

std::string rank_text(const Comm& c, int r) {
  const std::string t = read_text(c, r);
  return "rank " + std::to_string(r) + (r == c.rank ? " (this rank)" : "") + " is " +
         (t.empty() ? "not blocked in an operation of this communicator" : t);
}

std::string deadlock_message(const Comm& c, const std::vector<int>& cycle, double quiet) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", quiet);
  std::string s = "emulated NCCL deadlock on communicator " + c.name + " (" + std::to_string(c.nranks) +
                  " ranks): ";
  for (size_t i = 0; i < cycle.size(); ++i) s += (i ? "; " : "") + rank_text(c, cycle[i]);
  if (std::find(cycle.begin(), cycle.end(), c.rank) == cycle.end())
    s += "; and " + rank_text(c, c.rank) + ", behind them";
  return s + " (no progress for " + secs + " s; every wait is for a peer to post an operation that is queued "
             "behind the wait or not issued yet)";
}

std::string timeout_message(const Comm& c, double quiet) {
  std::string s = "emulated NCCL: rank " + std::to_string(c.rank) + " has waited " + std::to_string(int(quiet)) +
                  " s on communicator " + c.name + " (" + std::to_string(c.nranks) +
                  " ranks) with no progress on any rank (DIFFTRON_EMU_NCCL_TIMEOUT): ";
  for (int q = 0; q < c.nranks; ++q) s += (q ? "; " : "") + rank_text(c, q);
  return s;
}

}  // namespace

Poll::Poll(const Comm& c) : seen(size_t(c.nranks)), on(size_t(c.nranks), 0) {
  for (int q = 0; q < c.nranks; ++q) seen[size_t(q)] = c.state(q).progress.load(std::memory_order_acquire);
}

void publish_text(Comm& c, const std::string& text) {
  RankState& me = c.state(c.rank);
  std::string t = text;
  if (t.size() >= kTextBytes) t = t.substr(0, kTextBytes - 8) + " …";
  const uint64_t v = me.text_version.load(std::memory_order_relaxed);
  me.text_version.store(v + 1, std::memory_order_relaxed);  // odd: being written
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(me.text, t.c_str(), t.size() + 1);
  me.text_version.store(v + 2, std::memory_order_release);
  c.published_text = text;
}

std::string read_text(const Comm& c, int r) {
  const RankState& s = c.state(r);
  char buf[kTextBytes];
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint64_t v = s.text_version.load(std::memory_order_acquire);
    if (v & 1) continue;
    std::memcpy(buf, s.text, kTextBytes);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.text_version.load(std::memory_order_relaxed) == v) {
      buf[kTextBytes - 1] = 0;
      return buf;
    }
  }
  return "(its state is changing)";
}

void set_wait(Comm& c, uint64_t op, Wait w) {
  auto it = c.blocked.find(op);
  if (it != c.blocked.end() && it->second.text == w.text && it->second.on == w.on) return;
  c.blocked[op] = std::move(w);
  publish(c);
}

void clear_wait(Comm& c, uint64_t op) {
  if (c.blocked.erase(op)) publish(c);
  if (c.blocked.empty()) c.watch.active = false;
}

std::string check_stuck(Comm& c) {
  for (int q = 0; q < c.nranks; ++q) {
    if (q == c.rank) continue;
    const uint32_t f = c.state(q).failed.load(std::memory_order_acquire);
    if (f == 2) return "emulated NCCL: rank " + std::to_string(q) + " aborted communicator " + c.name;
    if (f == 1) return "emulated NCCL: rank " + std::to_string(q) + " of communicator " + c.name + " failed: " +
                       read_text(c, q);
    if (f == 3 && c.published_on[size_t(q)])
      return "emulated NCCL: rank " + std::to_string(q) + " destroyed communicator " + c.name + " while " +
             rank_text(c, c.rank);
  }
  const auto now = Clock::now();
  watch(c, now);
  const std::vector<int> cycle = find_cycle(c, c.rank);
  if (!cycle.empty()) {
    std::vector<int> involved = cycle;
    involved.push_back(c.rank);
    const double quiet = quiet_seconds(c, involved, now);
    if (quiet >= kDeadlockSeconds) return deadlock_message(c, cycle, quiet);
  }
  std::vector<int> all(size_t(c.nranks));
  for (int q = 0; q < c.nranks; ++q) all[size_t(q)] = q;
  const double quiet = quiet_seconds(c, all, now);
  if (quiet >= timeout_seconds()) return timeout_message(c, quiet);
  return "";
}

}  // namespace emu::nccl
