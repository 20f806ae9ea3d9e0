#include "room.hpp"

#include <boost/asio/as_tuple.hpp>

namespace netlab::chat {

namespace asio = boost::asio;
using boost::system::error_code;

outbox::outbox(const io_executor& executor, std::size_t limit, std::function<void()> on_overflow)
    : limit_(limit), on_overflow_(std::move(on_overflow)), doorbell_(executor, 1) {}

bool outbox::push(message m, std::size_t lines) {
  bool overflowed_now = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_ || overflowed_) return false;
    if (queued_lines_ + lines <= limit_) {
      queue_.push_back(std::move(m));
      queued_lines_ += lines;
      // The writer empties the queue on every take, so only the first push after a take needs
      // to wake it.
      if (queue_.size() == 1) ring();
    } else {
      // This is where the queued design parts from the lesson's: a full outbox is the slow
      // client's problem, not the sender's. Nobody waits; the client is disconnected.
      overflowed_ = true;
      overflowed_now = true;
      ring();
    }
  }
  if (overflowed_now) {
    if (on_overflow_) on_overflow_();
    return false;
  }
  return true;
}

bool outbox::writer_behind() {
  std::lock_guard lock(mutex_);
  return !closed_ && !overflowed_ && queued_lines_ > limit_ / 2 && !writer_waiting_for_room_;
}

outbox::state outbox::take(std::vector<message>& batch) {
  std::lock_guard lock(mutex_);
  batch.insert(batch.end(), std::make_move_iterator(queue_.begin()),
               std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_lines_ = 0;
  return {closed_, overflowed_};
}

task<> outbox::wait() {
  co_await doorbell_.async_receive(asio::as_tuple(use_task));
}

void outbox::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  ring();
}

void outbox::ring() { doorbell_.try_send(error_code{}); }

bool room::join(const std::string& name, std::shared_ptr<outbox> box) {
  auto joined = notice(name + " joined");  // formatted before locking: keep the section short
  std::lock_guard lock(mutex_);
  if (!clients_.emplace(name, std::move(box)).second) return false;
  broadcast_locked(name, joined);
  return true;
}

void room::leave(const std::string& name, bool announce) {
  if (!announce) {
    std::lock_guard lock(mutex_);
    clients_.erase(name);
    return;
  }
  auto left = notice(name + " left");
  std::lock_guard lock(mutex_);
  if (clients_.erase(name) > 0) broadcast_locked(name, left);
}

bool room::rename(const std::string& from, const std::string& to) {
  auto renamed = notice(from + " is now " + to);
  std::lock_guard lock(mutex_);
  if (from == to) return true;
  if (clients_.contains(to)) return false;
  auto node = clients_.extract(from);
  if (node.empty()) return false;
  node.key() = to;
  clients_.insert(std::move(node));
  broadcast_locked({}, renamed);
  return true;
}

void room::broadcast(const std::string& sender, const message& m, std::size_t lines,
                     std::vector<std::shared_ptr<outbox>>* behind) {
  std::lock_guard lock(mutex_);
  broadcast_locked(sender, m, lines, behind);
}

void room::broadcast_locked(const std::string& sender, const message& m, std::size_t lines,
                            std::vector<std::shared_ptr<outbox>>* behind) {
  // Holding the room's lock while pushing is what keeps every sender's lines in order, the same
  // order in every outbox; a push is a few pointer moves, and never waits.
  for (const auto& [name, box] : clients_) {
    if (name == sender) continue;
    if (box->push(m, lines) && behind != nullptr && box->writer_behind()) behind->push_back(box);
  }
}

std::vector<std::string> room::names() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> result;
  result.reserve(clients_.size());
  for (const auto& [name, box] : clients_) result.push_back(name);
  return result;
}

}  // namespace netlab::chat
