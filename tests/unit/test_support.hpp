// What the in-process server tests share: a client coroutine run against a server on the same
// runtime, and a plain connect.
#pragma once

#include "common/executor.hpp"
#include "common/runtime.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/test/unit_test.hpp>

#include <exception>

namespace netlab::testing {

// Runs `client` on `rt` to its end, then stops the server (so run() returns); rethrows what the
// client threw, so a failed co_await fails the test.
inline void run_client_then_stop(runtime& rt, task<> client) {
  std::exception_ptr failure;
  boost::asio::co_spawn(rt.context(), std::move(client), [&](std::exception_ptr e) {
    failure = e;
    rt.request_stop();
  });
  BOOST_TEST(rt.run() == 0);
  if (failure) std::rethrow_exception(failure);
}

inline task<tcp_socket> connect_to(boost::asio::ip::tcp::endpoint server) {
  tcp_socket socket(co_await boost::asio::this_coro::executor);
  co_await socket.async_connect(server, use_task);
  co_return socket;
}

}  // namespace netlab::testing
