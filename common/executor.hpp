// The one executor type of netlab's servers, and the coroutine and I/O object types bound to it.
//
// Why not Asio's defaults: `asio::awaitable<T>`, `tcp::socket`, `steady_timer` and the channels
// all use `any_io_executor`, a type-erased executor, and every operation pays for the erasure:
// the executor is copied, asked through a function pointer to track outstanding work, destroyed,
// and the completion goes through a type-erased function. In a profile of echo_split at 1000
// connections with one line in flight each, that was several % of the server's CPU.
//
// Why a concrete type is possible: the runtime runs one io_context per thread (runtime.hpp), and a
// connection lives on one of them from accept to close. So every coroutine and every I/O object
// can use the io_context's own executor type, which Asio calls directly, with nothing erased.
//
// The rule that comes with it: a coroutine can only await operations of its own executor type.
// Every server coroutine is a `task`, every operation in one takes `use_task`, and no coroutine
// runs on a strand (a strand is another executor type; one thread per io_context already keeps a
// connection's handlers from running at once).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_signal_set.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace netlab {

// The io_context's own executor. (Not named `executor`: that is the natural name of a variable,
// and every variable so named in netlab would then shadow the type, which -Wshadow reports.)
using io_executor = boost::asio::io_context::executor_type;

// A coroutine on `io_executor`: what `asio::awaitable<T>` is to `any_io_executor`.
template <typename T = void>
using task = boost::asio::awaitable<T, io_executor>;

// The completion token that awaits an operation inside a `task` (Asio's `use_awaitable` is for
// `any_io_executor` coroutines only). Built the way Asio builds `use_awaitable`, with (0, 0, 0):
// under handler tracking (the trace preset) the default constructor would record this line as
// the source of every operation.
inline constexpr boost::asio::use_awaitable_t<io_executor> use_task(0, 0, 0);

// The I/O objects, rebound to `io_executor`. Constructed from an io_context, or an io_executor.
using tcp_socket = boost::asio::ip::tcp::socket::rebind_executor<io_executor>::other;
using tcp_acceptor = boost::asio::ip::tcp::acceptor::rebind_executor<io_executor>::other;
using udp_socket = boost::asio::ip::udp::socket::rebind_executor<io_executor>::other;
using steady_timer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, io_executor>;
using signal_set = boost::asio::basic_signal_set<io_executor>;
template <typename... Signatures>
using channel = boost::asio::experimental::channel<io_executor, Signatures...>;
template <typename... Signatures>
using concurrent_channel =
    boost::asio::experimental::concurrent_channel<io_executor, Signatures...>;

}  // namespace netlab
