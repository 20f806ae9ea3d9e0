// Latency samples counted per value to three significant digits, mergeable.
//
// common/stats.hpp's latency_stats counts one stream of samples the same way (both take their
// percentiles from its nearest_rank); netbench keeps one histogram per connection (each touched
// only by its connection's strand, so no lock on the hot path) and adds them up at the end,
// which latency_stats cannot do.
//
// Why three significant digits and not whole microseconds: a p50 of 14 us counted to the
// microsecond is known to ±0.5 us, ±4%, which is as wide as the gaps between the servers the
// benchmark compares. Three digits are 0.1% at any scale (0.01 us at 14 us, 1 us at 1 ms), and
// still bound the histogram: at most 900 distinct values per decade, however long the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>

namespace netlab::bench {

class latency_histogram {
 public:
  void add(std::chrono::nanoseconds sample);
  void merge(const latency_histogram& other);

  std::uint64_t count() const { return count_; }
  // Nearest rank, as latency_stats::percentile: the smallest sample that at least `percent`% of
  // the samples do not exceed (to three significant digits), in microseconds; 0 without samples.
  double percentile_us(unsigned percent) const;
  double max_us() const;

 private:
  std::uint64_t count_ = 0;
  // Samples in nanoseconds rounded to three significant digits, counted per value.
  std::map<std::int64_t, std::uint64_t> count_by_value_;
};

// `nanoseconds` rounded to three significant digits (exact below 1000): 12 345 -> 12 300.
std::int64_t three_significant_digits(std::int64_t nanoseconds);

}  // namespace netlab::bench
