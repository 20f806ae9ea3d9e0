#include "sequence_tracker.hpp"

#include <algorithm>
#include <cstddef>

namespace netlab::bench {

sequence_tracker::verdict sequence_tracker::record(std::uint64_t seq) {
  if (seq == next_) {
    ++next_;
    return verdict::in_order;
  }
  if (seq > next_) {
    // Remember the newest skips only; the rest of a huge gap is lost for good at once.
    const std::uint64_t skipped = seq - next_;
    const std::uint64_t kept = std::min<std::uint64_t>(skipped, remembered_gaps);
    lost_for_good_ += skipped - kept;
    for (std::uint64_t s = seq - kept; s < seq; ++s) gaps_.push_back(s);
    if (gaps_.size() > remembered_gaps) {
      const auto forget = gaps_.size() - remembered_gaps;
      lost_for_good_ += forget;
      gaps_.erase(gaps_.begin(), gaps_.begin() + static_cast<std::ptrdiff_t>(forget));
    }
    next_ = seq + 1;
    return verdict::after_gap;
  }
  const auto gap = std::lower_bound(gaps_.begin(), gaps_.end(), seq);
  if (gap != gaps_.end() && *gap == seq) {
    gaps_.erase(gap);
    ++reordered_;
    return verdict::reordered;
  }
  ++duplicated_;
  return verdict::duplicated;
}

void sequence_tracker::close(std::uint64_t sent) {
  if (sent > next_) {
    lost_for_good_ += sent - next_;
    next_ = sent;
  }
}

}  // namespace netlab::bench
