// Round-trip statistics as ping(8) reports them (min/avg/max/mdev), plus percentiles.
//
// Shared by every tool that measures latency. Pure arithmetic: no clock, no socket, so the
// figures can be checked against values computed by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>

namespace netlab {

class latency_stats {
 public:
  void add(std::chrono::nanoseconds sample);

  std::uint64_t count() const { return count_; }
  std::chrono::nanoseconds min() const { return min_; }
  std::chrono::nanoseconds max() const { return max_; }
  double mean_ns() const { return mean_; }
  // ping's mdev: the population standard deviation, sqrt(mean(x²) - mean(x)²).
  double mdev_ns() const;

  // The nearest-rank percentile (the smallest sample that at least `percent`% of the samples do
  // not exceed), in whole microseconds. `percent` in 1..100; 0 when there are no samples.
  std::chrono::microseconds percentile(unsigned percent) const;

 private:
  std::uint64_t count_ = 0;
  std::chrono::nanoseconds min_{0};
  std::chrono::nanoseconds max_{0};
  // Welford's running mean and sum of squared deviations: the textbook sum-of-squares formula
  // loses every digit when the spread is tiny next to the mean (11 us ± 0.2 us, squared in ns).
  double mean_ = 0;
  double squared_deviations_ = 0;
  // Samples rounded to the microsecond, counted per value. A run of any length keeps one entry
  // per distinct microsecond (a few hundred on loopback), not one per sample.
  std::map<std::int64_t, std::uint64_t> count_by_microsecond_;
};

// The nearest-rank percentile of samples counted per value (value -> how many): the smallest
// value that at least `percent`% of the `total` samples do not exceed. `percent` is clamped to
// 1..100; 0 when there are no samples. latency_stats and netbench's mergeable histogram both
// count this way, at different resolutions.
std::int64_t nearest_rank(const std::map<std::int64_t, std::uint64_t>& counts, std::uint64_t total,
                          unsigned percent);

// Lost as a percentage of sent (0 when nothing was sent), as ping prints it.
double loss_percent(std::uint64_t sent, std::uint64_t received);

}  // namespace netlab
