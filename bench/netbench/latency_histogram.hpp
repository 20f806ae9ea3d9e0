// Latency samples counted per microsecond, mergeable.
//
// common/stats.hpp's latency_stats does the same arithmetic for one stream of samples; netbench
// keeps one histogram per connection (each touched only by its connection's strand, so no lock
// on the hot path) and adds them up at the end, which latency_stats cannot do.
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
  // the samples do not exceed, in whole microseconds; 0 without samples.
  std::int64_t percentile_us(unsigned percent) const;
  std::int64_t max_us() const;

 private:
  std::uint64_t count_ = 0;
  // A run keeps one entry per distinct microsecond (a few hundred on loopback), whatever its
  // length.
  std::map<std::int64_t, std::uint64_t> count_by_microsecond_;
};

}  // namespace netlab::bench
