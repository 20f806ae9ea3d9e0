// co_spawn that never loses an exception.
//
// `boost::asio::detached` swallows whatever a coroutine throws; a server written with it fails
// silently. Every netlab coroutine is started here instead, with a completion handler that logs
// what escaped (and keeps quiet about cancellation, which is how a shutdown looks).
#pragma once

#include "executor.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

#include <concepts>
#include <exception>
#include <string>
#include <string_view>

namespace netlab {

namespace detail {

inline void report_escaped(std::exception_ptr failure, std::string_view what) {
  try {
    std::rethrow_exception(failure);
  } catch (const boost::system::system_error& e) {
    if (e.code() == boost::asio::error::operation_aborted) {
      spdlog::debug("{}: cancelled", what);
    } else {
      spdlog::error("{}: {}", what, e.what());
    }
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
  } catch (...) {
    spdlog::error("{}: an exception that is not a std::exception", what);
  }
}

}  // namespace detail

// `what` names the coroutine in that log line: a string, or a function that returns one. A
// session passes a function, so that its name ("echo 127.0.0.1:5000") is formatted only if
// something escapes, not once per connection.
template <typename What>
void spawn(const io_executor& executor, task<> coroutine, What what) {
  boost::asio::co_spawn(executor, std::move(coroutine),
                        [what = std::move(what)](std::exception_ptr failure) {
                          if (!failure) return;
                          if constexpr (std::invocable<const What&>) {
                            detail::report_escaped(failure, what());
                          } else {
                            detail::report_escaped(failure, what);
                          }
                        });
}

}  // namespace netlab
