#include "pinger.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/spawn.hpp"
#include "common/trace.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include <string>

namespace netlab::pingpong {

namespace asio = boost::asio;
using asio::ip::udp;
using boost::system::error_code;

namespace {

// Milliseconds with microsecond resolution, the way ping prints them.
std::string ms(double nanoseconds) { return fmt::format("{:.3f}", nanoseconds / 1e6); }
std::string ms(std::chrono::nanoseconds d) { return ms(static_cast<double>(d.count())); }

// The errors a connected UDP socket reports when an ICMP error came back for one of its
// datagrams. Each concerns one earlier ping, not the socket: the run carries on.
bool icmp_error(const error_code& error) {
  return error == asio::error::connection_refused || error == asio::error::host_unreachable ||
         error == asio::error::network_unreachable;
}

}  // namespace

udp::endpoint resolve_target(asio::io_context& io, const host_port& target) {
  udp::resolver resolver(io);
  error_code error;
  const auto results = resolver.resolve(target.host, std::to_string(target.port),
                                        udp::resolver::numeric_service, error);
  if (error || results.empty()) {
    throw startup_error(fmt::format("cannot resolve {}: {}", target.host, error.message()));
  }
  return results.begin()->endpoint();
}

pinger::pinger(runtime& rt, udp::endpoint target, const ping_options& options)
    : rt_(rt),
      target_(target),
      options_(options),
      socket_(rt.context()),
      send_timer_(rt.context()),
      watchdog_timer_(rt.context()),
      outgoing_(options.size),
      incoming_(max_datagram),
      tracker_(options.timeout) {
  error_code error;
  socket_.open(target.protocol(), error);
  if (!error) socket_.connect(target, error);
  // Pings are sent straight from whichever coroutine frees a slot (see send_ping); in
  // non-blocking mode a full send buffer returns would_block instead of stalling the thread.
  if (!error) socket_.non_blocking(true, error);
  if (error) throw startup_error(fmt::format("cannot ping {}: {}", target, error.message()));
}

void pinger::start(std::function<void()> when_done) {
  when_done_ = std::move(when_done);
  // `this` outlives the runtime's run() (main owns both), so the callback may capture it.
  membership_ = rt_.shutdown().join(
      [this] { asio::post(socket_.get_executor(), [this] { stop(); }); });
  spawn(socket_.get_executor(), run(), "pinger");
}

task<> pinger::run() {
  using namespace asio::experimental::awaitable_operators;
  try {
    co_await (receiver() && watchdog() && sender());
  } catch (const std::exception& e) {
    spdlog::error("pinging {}: {}", target_, e.what());  // the summary still says what was seen
  }
  print_summary();
  if (when_done_) when_done_();
  membership_ = {};
  rt_.request_stop();
}

task<> pinger::receiver() {
  while (!finished_) {
    error_code error;
    std::size_t size = 0;
    if (trace::enabled()) {
      std::tie(error, size) = co_await trace::receive(socket_, asio::buffer(incoming_));
    } else {
      std::tie(error, size) =
          co_await socket_.async_receive(asio::buffer(incoming_), asio::as_tuple(use_task));
    }
    const auto now = clock::now();  // first thing: the reply's time should not include ours
    if (finished_ || error == asio::error::operation_aborted) break;
    if (error) {
      handle_unreachable(error);
    } else {
      handle_datagram(size, now);
    }
    fill_window();
    finish_if_done();
  }
}

// Sleeps until the oldest outstanding ping's deadline and gives up on what has expired. Sending
// or answering a ping never wakes it (only stop does): with nothing outstanding it looks again
// after one timeout, and any ping sent meanwhile is due later than that; a deadline that moved
// (its ping was answered) costs one wake for nothing. So a round trip costs no timer operation.
task<> pinger::watchdog() {
  while (!finished_) {
    auto wake = tracker_.next_deadline().value_or(clock::now() + options_.timeout);
    if (stopping_) wake = std::min(wake, drain_deadline_);
    watchdog_timer_.expires_at(wake);
    co_await watchdog_timer_.async_wait(asio::as_tuple(use_task));
    if (finished_) break;
    const auto now = clock::now();
    for (const auto seq : tracker_.expire(now)) {
      if (!options_.quiet) {
        print("no reply from {}: seq={} timed out after {} ms", target_, seq,
              options_.timeout.count());
      }
    }
    if (stopping_ && now >= drain_deadline_) {
      if (const auto abandoned = tracker_.abandon_all()) {
        spdlog::info("stopped with {} pings unanswered: counted as lost", abandoned);
      }
    }
    fill_window();
    finish_if_done();
  }
}

task<> pinger::sender() {
  if (options_.interval.count() == 0) {
    fill_window();  // flood mode: from here on, replies and timeouts send the next pings
  } else {
    // A fixed cadence (start + k × interval), so that a slow reply does not delay later pings.
    auto next = clock::now();
    while (may_send()) {
      send_ping();
      if (!may_send()) break;
      next += options_.interval;
      send_timer_.expires_at(next);
      co_await send_timer_.async_wait(asio::as_tuple(use_task));
    }
  }
  finish_if_done();
}

void pinger::handle_datagram(std::size_t size, clock::time_point now) {
  const auto seq = read_pong({incoming_.data(), size}, options_.size);
  if (!seq) {
    tracker_.receive_foreign();
    spdlog::debug("ignored {} bytes from {}: not a pong to one of our pings", size, target_);
    return;
  }
  const auto result = tracker_.receive(*seq, now);
  switch (result.kind) {
    case reply_kind::reply:
      rtts_.add(result.rtt);
      if (!options_.quiet) print("pong from {}: seq={} time={} ms", target_, *seq, ms(result.rtt));
      break;
    case reply_kind::late:
      if (!options_.quiet) {
        print("late pong from {}: seq={} after its timeout, not counted", target_, *seq);
      }
      break;
    case reply_kind::duplicate:
      if (!options_.quiet) print("duplicate pong from {}: seq={}, not counted", target_, *seq);
      break;
    case reply_kind::foreign:
      spdlog::debug("ignored a pong from {} for seq={}, never sent", target_, *seq);
      break;
  }
}

// Linux reports an ICMP error (port unreachable: nothing listens there) on the next call on a
// connected UDP socket, without saying which datagram caused it: the oldest outstanding ping is
// the one it answers, and it is lost now rather than at its timeout.
void pinger::handle_unreachable(const error_code& error) {
  if (!icmp_error(error)) throw boost::system::system_error(error, "receive");
  const auto seq = tracker_.refuse_oldest();
  if (seq && !options_.quiet) print("from {}: seq={} {}", target_, *seq, error.message());
}

void pinger::send_ping() {
  write_ping(outgoing_, tracker_.next_seq());
  error_code error;
  auto now = clock::now();
  socket_.send(asio::buffer(outgoing_), 0, error);
  if (icmp_error(error)) {
    // The pending ICMP error came out here instead of in the receiver, and this ping was not
    // sent: account for the earlier one, then send this one again.
    handle_unreachable(error);
    now = clock::now();
    socket_.send(asio::buffer(outgoing_), 0, error);
  }
  tracker_.sent(now);
  if (trace::enabled()) {
    // Sent without waiting: a datagram socket's send buffer has room, or the send fails.
    trace::note(socket_.native_handle(), "send",
                error ? "failed: " + error.message() : fmt::format("completed with {} bytes",
                                                                  outgoing_.size()));
  }
  // A ping that could not be sent still counts: it times out as lost, so a failing route shows
  // in the loss figure instead of disappearing from it.
  if (error) spdlog::warn("ping seq={} to {}: {}", tracker_.sent(), target_, error.message());
}

void pinger::fill_window() {
  if (options_.interval.count() != 0) return;
  while (may_send() && tracker_.in_flight() < options_.inflight) send_ping();
}

bool pinger::may_send() const {
  return !stopping_ && !finished_ && (options_.count == 0 || tracker_.sent() < options_.count);
}

// Ctrl-C or SIGTERM: send no more, and give the pings already sent a short while to be answered.
void pinger::stop() {
  if (stopping_ || finished_) return;
  stopping_ = true;
  drain_deadline_ = clock::now() + stop_drain_limit;
  send_timer_.cancel();
  watchdog_timer_.cancel();  // it wakes at the drain deadline at the latest
  finish_if_done();
}

void pinger::finish_if_done() {
  if (finished_ || may_send() || tracker_.in_flight() > 0) return;
  finished_ = true;
  error_code ignored;
  socket_.close(ignored);  // ends the receiver's wait
  send_timer_.cancel();
  watchdog_timer_.cancel();
}

void pinger::summarize_if_cut_short() {
  if (summarized_) return;
  if (const auto abandoned = tracker_.abandon_all()) {
    spdlog::info("stopped at once with {} pings unanswered: counted as lost", abandoned);
  }
  print_summary();
}

void pinger::print_summary() {
  summarized_ = true;
  const auto& t = tracker_;
  std::string others;  // what arrived but did not count, shown only when it happened
  if (t.late() > 0) others += fmt::format(", {} late", t.late());
  if (t.duplicates() > 0) others += fmt::format(", {} duplicate", t.duplicates());
  if (t.foreign() > 0) others += fmt::format(", {} foreign", t.foreign());
  if (t.refused() > 0) others += fmt::format(", {} refused", t.refused());
  print("--- {} udp_pingpong statistics ---", target_);
  print("{} sent, {} received, {:g}% loss{}", t.sent(), t.received(),
        loss_percent(t.sent(), t.received()), others);
  if (rtts_.count() > 0) {
    print("rtt min/avg/max/mdev = {}/{}/{}/{} ms", ms(rtts_.min()), ms(rtts_.mean_ns()),
          ms(rtts_.max()), ms(rtts_.mdev_ns()));
    print("rtt p50/p90/p99 = {}/{}/{} ms", ms(rtts_.percentile(50)), ms(rtts_.percentile(90)),
          ms(rtts_.percentile(99)));
  }
  if (t.received() > 0) return;
  // Exit status 1 follows; say why in one line, as for any other runtime failure.
  if (t.sent() == 0) {
    print_error("error: no ping was sent to {}", target_);
  } else if (t.refused() > 0) {
    print_error("error: no reply from {}: port unreachable (is anything listening there?)",
                target_);
  } else if (stopping_) {  // a signal cut the run short: the timeout may not have passed
    print_error("error: no reply from {} before the run was stopped", target_);
  } else {
    print_error("error: no reply from {} within {} ms", target_, options_.timeout.count());
  }
}

}  // namespace netlab::pingpong
