// co_spawn that never loses an exception.
//
// `boost::asio::detached` swallows whatever a coroutine throws; a server written with it fails
// silently. Every netlab coroutine is started here instead, with a completion handler that logs
// what escaped (and keeps quiet about cancellation, which is how a shutdown looks).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

#include <exception>
#include <string>

namespace netlab {

template <typename Executor>
void spawn(const Executor& executor, boost::asio::awaitable<void> task, std::string what) {
  boost::asio::co_spawn(executor, std::move(task),
                        [what = std::move(what)](std::exception_ptr failure) {
                          if (!failure) return;
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
                          }
                        });
}

}  // namespace netlab
