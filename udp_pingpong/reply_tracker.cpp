#include "reply_tracker.hpp"

#include <algorithm>

namespace netlab::pingpong {

reply_tracker::reply_tracker(clock::duration timeout)
    : timeout_(timeout), recent_(remembered_outcomes) {}

void reply_tracker::sent(clock::time_point now) {
  in_flight_.push_back({next_seq_++, now});
}

match reply_tracker::receive(std::uint64_t seq, clock::time_point now) {
  if (seq == 0 || seq >= next_seq_) {
    ++foreign_;  // a pong to a ping never sent
    return {reply_kind::foreign};
  }
  const auto found =
      std::lower_bound(in_flight_.begin(), in_flight_.end(), seq,
                       [](const outstanding& o, std::uint64_t s) { return o.seq < s; });
  if (found != in_flight_.end() && found->seq == seq) {
    const auto rtt = now - found->sent_at;
    in_flight_.erase(found);
    // Past its timeout but not yet expired (the timer had not fired): late all the same, so that
    // the verdict depends on the times alone, not on which event the program handled first.
    if (rtt >= timeout_) {
      ++late_;
      finish(seq, outcome::lost);
      return {reply_kind::late, rtt};
    }
    ++received_;
    finish(seq, outcome::answered);
    return {reply_kind::reply, rtt};
  }
  const auto& memory = recent_[seq % remembered_outcomes];
  if (memory.seq == seq && memory.what == outcome::answered) {
    ++duplicates_;
    return {reply_kind::duplicate};
  }
  ++late_;  // given up on already, or too old to be remembered: either way past its timeout
  return {reply_kind::late};
}

std::vector<std::uint64_t> reply_tracker::expire(clock::time_point now) {
  std::vector<std::uint64_t> expired;
  while (!in_flight_.empty() && now - in_flight_.front().sent_at >= timeout_) {
    expired.push_back(in_flight_.front().seq);
    in_flight_.pop_front();
    finish(expired.back(), outcome::lost);
  }
  return expired;
}

std::optional<std::uint64_t> reply_tracker::refuse_oldest() {
  if (in_flight_.empty()) return std::nullopt;
  const auto seq = in_flight_.front().seq;
  in_flight_.pop_front();
  ++refused_;
  finish(seq, outcome::lost);
  return seq;
}

std::size_t reply_tracker::abandon_all() {
  const auto abandoned = in_flight_.size();
  while (!in_flight_.empty()) {
    finish(in_flight_.front().seq, outcome::lost);
    in_flight_.pop_front();
  }
  return abandoned;
}

std::optional<clock::time_point> reply_tracker::next_deadline() const {
  if (in_flight_.empty()) return std::nullopt;
  return in_flight_.front().sent_at + timeout_;
}

void reply_tracker::finish(std::uint64_t seq, outcome what) {
  if (what == outcome::lost) ++lost_;
  recent_[seq % remembered_outcomes] = {seq, what};
}

}  // namespace netlab::pingpong
