// What one receiver knows about one sender's numbered stream, and the verdict on each arrival.
//
// The definitions every netbench check uses (echo per connection, chat per receiver and sender):
//   seq == expected            in order
//   seq >  expected            the ones in between are lost (for now); carry on from seq + 1
//   seq <  expected, skipped   reordered: it was counted lost, it is not any more
//   seq <  expected, otherwise duplicated
// and at the end, what was sent but never arrived is lost too (close()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace netlab::bench {

// Skipped sequence numbers remembered, so that a late arrival counts as reordered instead of
// duplicated. Older skips are lost for good: this keeps a tracker small however much a faulty
// server drops.
inline constexpr std::size_t remembered_gaps = 1024;

class sequence_tracker {
 public:
  enum class verdict { in_order, after_gap, reordered, duplicated };

  // `seq` must be one the sender really sent (the caller checks it against what was sent).
  verdict record(std::uint64_t seq);

  // At the end: `sent` numbers were sent; those at or after next_expected() never came.
  void close(std::uint64_t sent);

  std::uint64_t next_expected() const { return next_; }
  std::uint64_t lost() const { return lost_for_good_ + gaps_.size(); }
  std::uint64_t reordered() const { return reordered_; }
  std::uint64_t duplicated() const { return duplicated_; }

 private:
  std::uint64_t next_ = 0;
  std::vector<std::uint64_t> gaps_;  // skipped, may still come; ascending, newest last
  std::uint64_t lost_for_good_ = 0;
  std::uint64_t reordered_ = 0;
  std::uint64_t duplicated_ = 0;
};

}  // namespace netlab::bench
