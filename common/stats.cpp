#include "stats.hpp"

#include <algorithm>
#include <cmath>

namespace netlab {

void latency_stats::add(std::chrono::nanoseconds sample) {
  ++count_;
  min_ = count_ == 1 ? sample : std::min(min_, sample);
  max_ = count_ == 1 ? sample : std::max(max_, sample);
  const auto x = static_cast<double>(sample.count());
  const double delta = x - mean_;
  mean_ += delta / static_cast<double>(count_);
  squared_deviations_ += delta * (x - mean_);
  // Round to nearest, so that a percentile and the min/max printed beside it agree.
  ++count_by_microsecond_[(sample.count() + 500) / 1000];
}

double latency_stats::mdev_ns() const {
  if (count_ == 0) return 0;
  return std::sqrt(squared_deviations_ / static_cast<double>(count_));
}

std::chrono::microseconds latency_stats::percentile(unsigned percent) const {
  return std::chrono::microseconds(nearest_rank(count_by_microsecond_, count_, percent));
}

std::int64_t nearest_rank(const std::map<std::int64_t, std::uint64_t>& counts, std::uint64_t total,
                          unsigned percent) {
  if (total == 0 || counts.empty()) return 0;
  percent = std::clamp(percent, 1u, 100u);
  // rank = ceil(percent/100 × total), in integers so that p90 of 10 samples is exactly the 9th.
  const std::uint64_t rank = (percent * total + 99) / 100;
  std::uint64_t seen = 0;
  for (const auto& [value, n] : counts) {
    seen += n;
    if (seen >= rank) return value;
  }
  return counts.rbegin()->first;
}

double loss_percent(std::uint64_t sent, std::uint64_t received) {
  if (sent == 0) return 0;
  return 100.0 * static_cast<double>(sent - std::min(sent, received)) / static_cast<double>(sent);
}

}  // namespace netlab
