#include "latency_histogram.hpp"

#include "common/stats.hpp"

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
  return static_cast<double>(nearest_rank(count_by_value_, count_, percent)) / 1000;
}

double latency_histogram::max_us() const {
  return count_ == 0 ? 0 : static_cast<double>(count_by_value_.rbegin()->first) / 1000;
}

}  // namespace netlab::bench
