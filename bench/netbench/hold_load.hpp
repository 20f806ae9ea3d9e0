// `netbench hold`: N idle connections held open, and what they cost the server in memory
// (VmRSS before, after they settle, and at the end of the hold).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace netlab::bench {

// Connects in flight at once: enough to open thousands in well under a second, few enough that
// the server's listen backlog (4096 by default here) never overflows and drops handshakes.
inline constexpr std::size_t hold_connect_concurrency = 256;

struct hold_options {
  boost::asio::ip::tcp::endpoint target;
  std::size_t conns = 1000;
  std::chrono::milliseconds hold{5000};    // from the last connect to the close, settle included
  std::chrono::milliseconds settle{1000};  // the server may allocate after accepting
  pid_t pid = 0;
  // Send one line and read it back before going idle: proves the server accepted the
  // connection (a connect alone completes in the kernel's backlog, accepted or not).
  bool touch = false;
};

struct hold_result {
  hold_options options;
  std::uint64_t held = 0;              // connected and still open at the end
  std::uint64_t failed = 0;            // refused, or a touch that failed
  std::uint64_t closed_by_server = 0;  // connected, but found closed at the end
  std::optional<std::uint64_t> rss_before_kib;
  std::optional<std::uint64_t> rss_settled_kib;
  std::optional<std::uint64_t> rss_after_kib;  // at the end of the hold
  bool cut_off = false;

  std::uint64_t errors() const { return failed + closed_by_server + (cut_off ? 1 : 0); }
  std::optional<double> kib_per_conn() const;
};

hold_result run_hold(const hold_options& options);

void print_report(const hold_result& result);
std::string summary_json(const hold_result& result);

}  // namespace netlab::bench
