// Which pings are outstanding, and what an arriving pong is: the reply to one of them, or not.
//
// This is where the honesty of the numbers lives. A pong counts as a reply only when it answers
// a ping that is still outstanding and arrives within the timeout; every other datagram is put in
// a category of its own, so that the summary can say what happened instead of inflating the count:
//   late       the ping had already been given up (timed out) when its pong came
//   duplicate  the ping had already been answered
//   foreign    not a pong to any ping this pinger sent (garbage, another program, a seq never sent)
// Time is passed in, never read from a clock, so that every case can be replayed in a unit test.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace netlab::pingpong {

using clock = std::chrono::steady_clock;

// How many finished pings the tracker remembers the outcome of, to tell a duplicate from a late
// reply. A pong older than that is reported late without looking: it is certainly past its
// timeout, and remembering every ping of an endless flood would grow without bound.
inline constexpr std::size_t remembered_outcomes = 4096;

enum class reply_kind { reply, late, duplicate, foreign };

struct match {
  reply_kind kind;
  clock::duration rtt{};  // send to receipt; meaningful for `reply` and `late`
};

class reply_tracker {
 public:
  explicit reply_tracker(clock::duration timeout);

  // The sequence number the next ping carries (1, 2, 3, ...).
  std::uint64_t next_seq() const { return next_seq_; }
  // That ping left at `now`.
  void sent(clock::time_point now);

  // A pong for `seq` arrived at `now`.
  match receive(std::uint64_t seq, clock::time_point now);
  // A datagram that is not a pong at all.
  void receive_foreign() { ++foreign_; }

  // Gives up on every ping whose timeout has passed by `now`; returns their sequence numbers.
  std::vector<std::uint64_t> expire(clock::time_point now);
  // The kernel reported the peer unreachable (an ICMP error, which names no ping): the oldest
  // outstanding ping is the one it answers. Returns its sequence number, if one was outstanding.
  std::optional<std::uint64_t> refuse_oldest();
  // Gives up on everything outstanding (the run is being stopped); returns how many.
  std::size_t abandon_all();

  // When the oldest outstanding ping times out. Deadlines grow with the sequence number (one
  // timeout for all, pings sent in order), so the oldest is always the first to expire.
  std::optional<clock::time_point> next_deadline() const;
  std::size_t in_flight() const { return in_flight_.size(); }

  // sent == received + lost + in_flight, at every moment.
  std::uint64_t sent() const { return next_seq_ - 1; }
  std::uint64_t received() const { return received_; }
  std::uint64_t lost() const { return lost_; }
  std::uint64_t late() const { return late_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t foreign() const { return foreign_; }
  std::uint64_t refused() const { return refused_; }

 private:
  enum class outcome : std::uint8_t { unknown, answered, lost };
  struct outstanding {
    std::uint64_t seq;
    clock::time_point sent_at;
  };
  struct remembered {
    std::uint64_t seq = 0;
    outcome what = outcome::unknown;
  };

  void finish(std::uint64_t seq, outcome what);

  clock::duration timeout_;
  std::uint64_t next_seq_ = 1;
  std::deque<outstanding> in_flight_;  // ordered by seq; a reply usually removes the front
  std::vector<remembered> recent_;     // ring indexed by seq % remembered_outcomes
  std::uint64_t received_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t late_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t foreign_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace netlab::pingpong
