// Graceful shutdown, step "tell" and step "wait".
//
// Everything that must stop when the server stops (the accept loop, every session) joins the
// coordinator with a callback that asks it to stop, and leaves when it has finished. A stop request
// calls every callback once; when the last member leaves, the coordinator reports that all have
// finished, and the runtime lets `io_context::run()` return on its own.
#pragma once

#include <boost/asio/post.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace netlab {

class shutdown_coordinator {
 public:
  // Membership, from join to leave. Move-only; leaving happens in the destructor, so a member
  // cannot forget to leave on any path out of it (EOF, reset, exception).
  class membership {
   public:
    membership() = default;
    membership(membership&& other) noexcept;
    membership& operator=(membership&& other) noexcept;
    membership(const membership&) = delete;
    membership& operator=(const membership&) = delete;
    ~membership();

   private:
    friend class shutdown_coordinator;
    membership(shutdown_coordinator* owner, std::uint64_t id) : owner_(owner), id_(id) {}
    shutdown_coordinator* owner_ = nullptr;
    std::uint64_t id_ = 0;
  };

  // `ask_to_stop` runs once, on the thread that requests the stop (or at once, when the stop was
  // already requested). It must not block: post to the member's executor and return.
  [[nodiscard]] membership join(std::function<void()> ask_to_stop);

  // Asks every member to stop. Safe from any thread; only the first call does anything.
  void request_stop();
  bool stop_requested() const;
  std::size_t members() const;

  // Called once, when a stop was requested and no member is left.
  void on_all_finished(std::function<void()> callback);

 private:
  void leave(std::uint64_t id);
  void report_if_finished(std::unique_lock<std::mutex> lock);

  mutable std::mutex mutex_;  // guards everything below; never held while a callback runs
  std::map<std::uint64_t, std::function<void()>> members_;
  std::uint64_t next_id_ = 1;
  bool stop_requested_ = false;
  bool finished_reported_ = false;
  std::function<void()> all_finished_;
};

// How a member shared by pointer joins: when the stop comes, `stop(*member)` runs on `executor`
// (the member's own thread, whichever thread asked), if the member is still alive by then.
template <typename Member, typename Executor, typename Stop>
[[nodiscard]] shutdown_coordinator::membership join_on(shutdown_coordinator& shutdown,
                                                       const Executor& executor,
                                                       std::weak_ptr<Member> member, Stop stop) {
  return shutdown.join([executor, member = std::move(member), stop = std::move(stop)] {
    if (auto alive = member.lock()) {
      boost::asio::post(executor, [alive = std::move(alive), stop] { stop(*alive); });
    }
  });
}

}  // namespace netlab
