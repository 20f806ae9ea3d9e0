#include "latency_histogram.hpp"

#include <algorithm>

namespace netlab::bench {

void latency_histogram::add(std::chrono::nanoseconds sample) {
  ++count_;
  ++count_by_microsecond_[(std::max<std::int64_t>(sample.count(), 0) + 500) / 1000];
}

void latency_histogram::merge(const latency_histogram& other) {
  count_ += other.count_;
  for (const auto& [microseconds, n] : other.count_by_microsecond_) {
    count_by_microsecond_[microseconds] += n;
  }
}

std::int64_t latency_histogram::percentile_us(unsigned percent) const {
  if (count_ == 0) return 0;
  percent = std::clamp(percent, 1u, 100u);
  const std::uint64_t rank = (percent * count_ + 99) / 100;  // ceil(percent/100 × count)
  std::uint64_t seen = 0;
  for (const auto& [microseconds, n] : count_by_microsecond_) {
    seen += n;
    if (seen >= rank) return microseconds;
  }
  return max_us();
}

std::int64_t latency_histogram::max_us() const {
  return count_ == 0 ? 0 : count_by_microsecond_.rbegin()->first;
}

}  // namespace netlab::bench
