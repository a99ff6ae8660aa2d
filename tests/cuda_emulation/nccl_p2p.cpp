// Emulated NCCL, part 3 (see nccl_emulation.hpp): send and recv. Messages
// from one rank to another travel back to back through their channel's byte
// ring of buffer_bytes; send k and recv k of a channel match (k counts per
// ordered pair, in issue order). A send posts its size, then writes while the
// ring has room; a recv posts itself, checks the size against its send, then
// reads. So a send runs at most buffer_bytes ahead of its receive.
#include <algorithm>
#include <cstring>

#include "nccl_emulation.hpp"

namespace emu::nccl {
namespace {

constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelease = std::memory_order_release;
constexpr auto kRelaxed = std::memory_order_relaxed;

// Copies n bytes between `flat` and the ring at stream position pos (wrapping).
void ring_copy(unsigned char* ring, size_t ring_bytes, uint64_t pos, unsigned char* flat, size_t n, bool into_ring) {
  while (n) {
    const size_t at = size_t(pos % ring_bytes), len = std::min(n, ring_bytes - at);
    if (into_ring) std::memcpy(ring + at, flat, len);
    else std::memcpy(flat, ring + at, len);
    pos += len, flat += len, n -= len;
  }
}

std::string rank_str(int r) { return "rank " + std::to_string(r); }

}  // namespace

void poll_send(Comm& c, Call& k, Poll& p) {
  Channel& ch = c.channel(c.rank, k.peer);
  const size_t bytes = k.bytes();
  const std::string to = rank_str(k.peer);
  if (!k.posted) {
    if (ch.send_posted.load(kRelaxed) != k.seq) {
      p.wait("waiting for this rank's earlier send to " + to + " (on another stream) to be posted");
      return;
    }
    if (k.seq >= ch.recv_matched.load(kAcquire) + kMetaSlots) {
      p.wait_on(k.peer, "waiting for " + to + " to post the recvs matching its " + std::to_string(kMetaSlots) +
                            " earlier sends");
      return;
    }
    ch.send_bytes[k.seq % kMetaSlots] = bytes;
    ch.send_posted.store(k.seq + 1, kRelease);
    k.posted = p.progressed = true;
  }
  const uint64_t written = ch.written.load(kRelaxed);
  if (written == k.offset + k.moved) {  // every earlier message of the channel is in the ring
    const size_t room = c.buffer_bytes - size_t(written - ch.read.load(kAcquire));
    const size_t n = std::min(room, bytes - size_t(k.moved));
    if (n) {
      auto* src = static_cast<unsigned char*>(const_cast<void*>(k.send)) + k.moved;
      access(src, n, false);
      ring_copy(c.ring(c.rank, k.peer), c.buffer_bytes, written, src, n, true);
      ch.written.store(written + n, kRelease);
      k.moved += n;
      p.progressed = true;
    }
  }
  if (k.moved == bytes) {
    k.done = p.progressed = true;
    return;
  }
  if (ch.recv_posted.load(kAcquire) <= k.seq) p.wait_on(k.peer, "waiting for " + to + " to post its matching recv");
  else p.wait("waiting for " + to + " to drain the " + std::to_string(c.buffer_bytes) + "-byte buffer");
}

void poll_recv(Comm& c, Call& k, Poll& p) {
  Channel& ch = c.channel(k.peer, c.rank);
  const size_t bytes = k.bytes();
  const std::string from = rank_str(k.peer);
  if (!k.posted) {
    if (ch.recv_posted.load(kRelaxed) != k.seq) {
      p.wait("waiting for this rank's earlier recv from " + from + " (on another stream) to be posted");
      return;
    }
    ch.recv_posted.store(k.seq + 1, kRelease);
    k.posted = p.progressed = true;
  }
  if (!k.matched) {
    if (ch.send_posted.load(kAcquire) <= k.seq) {
      p.wait_on(k.peer, "waiting for " + from + " to post its matching send");
      return;
    }
    if (ch.recv_matched.load(kRelaxed) != k.seq) {
      p.wait("waiting for this rank's earlier recv from " + from + " (on another stream)");
      return;
    }
    const uint64_t sent = ch.send_bytes[k.seq % kMetaSlots];
    if (sent != bytes) {
      p.fault = "emulated NCCL: send/recv size mismatch on communicator " + c.name + ": rank " +
                std::to_string(c.rank) + " posted ncclRecv of " + std::to_string(bytes) + " B from " + from +
                ", but the matching ncclSend of " + from + " (its message #" + std::to_string(k.seq) + " to rank " +
                std::to_string(c.rank) + ") is " + std::to_string(sent) + " B";
      return;
    }
    ch.recv_matched.store(k.seq + 1, kRelease);
    k.matched = p.progressed = true;
  }
  const uint64_t read = ch.read.load(kRelaxed);
  if (read == k.offset + k.moved) {  // every earlier message of the channel has been taken out
    const size_t n = std::min(size_t(ch.written.load(kAcquire) - read), bytes - size_t(k.moved));
    if (n) {
      auto* dst = static_cast<unsigned char*>(k.recv) + k.moved;
      access(dst, n, true);
      ring_copy(c.ring(k.peer, c.rank), c.buffer_bytes, read, dst, n, false);
      ch.read.store(read + n, kRelease);
      k.moved += n;
      p.progressed = true;
    }
  }
  if (k.moved == bytes) {
    k.done = p.progressed = true;
    return;
  }
  p.wait("waiting for " + from + " to write the rest of its send");
}

}  // namespace emu::nccl
