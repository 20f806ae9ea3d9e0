#include "shutdown.hpp"

#include <utility>
#include <vector>

namespace netlab {

shutdown_coordinator::membership::membership(membership&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}

shutdown_coordinator::membership& shutdown_coordinator::membership::operator=(
    membership&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->leave(id_);
    owner_ = std::exchange(other.owner_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

shutdown_coordinator::membership::~membership() {
  if (owner_ != nullptr) owner_->leave(id_);
}

shutdown_coordinator::membership shutdown_coordinator::join(std::function<void()> ask_to_stop) {
  std::unique_lock lock(mutex_);
  const auto id = next_id_++;
  const auto& stored = members_.emplace(id, std::move(ask_to_stop)).first->second;
  if (stop_requested_) {
    // Joined after the stop request (an accept that raced it): told at once, like the others.
    auto tell = stored;
    lock.unlock();
    tell();
  }
  return membership(this, id);
}

void shutdown_coordinator::request_stop() {
  std::vector<std::function<void()>> to_tell;
  std::unique_lock lock(mutex_);
  if (stop_requested_) return;
  stop_requested_ = true;
  for (const auto& [id, ask_to_stop] : members_) to_tell.push_back(ask_to_stop);
  lock.unlock();
  // Outside the lock: a callback may post work that leaves the coordinator on another thread.
  for (const auto& ask_to_stop : to_tell) ask_to_stop();
  report_if_finished(std::unique_lock(mutex_));
}

bool shutdown_coordinator::stop_requested() const {
  std::lock_guard lock(mutex_);
  return stop_requested_;
}

std::size_t shutdown_coordinator::members() const {
  std::lock_guard lock(mutex_);
  return members_.size();
}

void shutdown_coordinator::on_all_finished(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  all_finished_ = std::move(callback);
}

void shutdown_coordinator::leave(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  members_.erase(id);
  report_if_finished(std::move(lock));
}

void shutdown_coordinator::report_if_finished(std::unique_lock<std::mutex> lock) {
  if (!stop_requested_ || !members_.empty() || finished_reported_) return;
  finished_reported_ = true;
  auto callback = all_finished_;
  lock.unlock();
  if (callback) callback();
}

}  // namespace netlab
