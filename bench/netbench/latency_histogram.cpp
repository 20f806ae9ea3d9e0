#include "latency_histogram.hpp"

#include <algorithm>

namespace netlab::bench {

std::int64_t three_significant_digits(std::int64_t nanoseconds) {
  std::int64_t scale = 1;
  while (nanoseconds >= 1000 * scale) scale *= 10;
  return (nanoseconds + scale / 2) / scale * scale;
}

void latency_histogram::add(std::chrono::nanoseconds sample) {
  ++count_;
  ++count_by_value_[three_significant_digits(std::max<std::int64_t>(sample.count(), 0))];
}

void latency_histogram::merge(const latency_histogram& other) {
  count_ += other.count_;
  for (const auto& [nanoseconds, n] : other.count_by_value_) count_by_value_[nanoseconds] += n;
}

double latency_histogram::percentile_us(unsigned percent) const {
  if (count_ == 0) return 0;
  percent = std::clamp(percent, 1u, 100u);
  const std::uint64_t rank = (percent * count_ + 99) / 100;  // ceil(percent/100 × count)
  std::uint64_t seen = 0;
  for (const auto& [nanoseconds, n] : count_by_value_) {
    seen += n;
    if (seen >= rank) return static_cast<double>(nanoseconds) / 1000;
  }
  return max_us();
}

double latency_histogram::max_us() const {
  return count_ == 0 ? 0 : static_cast<double>(count_by_value_.rbegin()->first) / 1000;
}

}  // namespace netlab::bench
