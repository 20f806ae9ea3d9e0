#include "counters.hpp"

namespace netlab::counter {

// Relaxed throughout; counters.hpp says why.
constexpr auto order = std::memory_order_relaxed;

std::uint64_t connection_counters::count_accepted() {
  active_.fetch_add(1, order);
  return accepted_.fetch_add(1, order) + 1;
}

after_close connection_counters::count_closed() {
  return {.active = active_.fetch_sub(1, order) - 1, .closed = closed_.fetch_add(1, order) + 1};
}

counts connection_counters::current() const {
  return {accepted_.load(order), active_.load(order), closed_.load(order)};
}

}  // namespace netlab::counter
