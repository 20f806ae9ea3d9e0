// The three counts every thread shares: accepted, active, closed.
//
// The lesson keeps one `Arc<AtomicUsize>`. Here the counts live in `connection_counters`, owned
// by the server, which main() creates before the runtime and destroys after it: every session is
// gone before the counters are, so the structure does what Arc's reference count does in the
// lesson, and sessions hold a plain reference.
//
// Memory order: relaxed is enough, and is what this file uses. Each counter is a fact of its own;
// no thread reads a counter to learn that some *other* data is ready, which is the only thing
// acquire/release (or seq_cst) would add. What the exercise needs from the atomics holds at any
// order:
//   - fetch_add is one indivisible read-modify-write, and all modifications of one atomic form a
//     single order that every RMW reads the latest of. So N = accepted.fetch_add(1) + 1 gives
//     each connection a different N, and the values handed out are 1, 2, 3, ... with no gap.
//     The same holds for the C that each close gets from closed.fetch_add.
//   - `active` never goes below zero: a session is started (posted to its thread) after its
//     increment, and a post orders what came before it, so the increment precedes the decrement
//     in `active`'s modification order. The ordering comes from the hand-off, not the atomic.
//   - The final counts are read after the runtime's threads were joined, and a join orders
//     everything those threads did before it.
// What relaxed does not give, and nothing here claims: a snapshot of the three counters taken
// together. `current()` reads each one exactly, but from slightly different moments; a status
// line may show accepted - closed != active while connections come and go. (seq_cst would not fix
// that either: three separate loads are three moments, whatever their order.) On x86 the RMWs
// compile to the same `lock xadd` at every order; the choice documents intent, not speed.
#pragma once

#include <atomic>
#include <cstdint>

namespace netlab::counter {

struct counts {
  std::uint64_t accepted = 0;
  std::uint64_t active = 0;
  std::uint64_t closed = 0;
};

// What a close reports: the two counters it changed, each as this close left it.
struct after_close {
  std::uint64_t active = 0;
  std::uint64_t closed = 0;
};

class connection_counters {
 public:
  // A connection was accepted: returns its number N (1 for the first), now counted as active.
  std::uint64_t count_accepted();

  // A connection has closed: returns `active` and `closed` as this close left them.
  after_close count_closed();

  // Each counter as it is now (see above: not one snapshot of the three).
  counts current() const;

 private:
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::uint64_t> closed_{0};
};

}  // namespace netlab::counter
