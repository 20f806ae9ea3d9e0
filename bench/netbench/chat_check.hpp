// One chat client's check of everything it receives: a sequence tracker per sender, and the
// errors that are not about order (a corrupted line, a client's own line sent back to it).
// No sockets: tests feed it crafted lines.
#pragma once

#include "sequence_tracker.hpp"
#include "wire.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace netlab::bench {

class chat_receiver {
 public:
  // `self`: this client's own sender number (a client that does not send has none that is
  // below `senders`, so any number at or above it will do).
  chat_receiver(std::uint32_t self, std::size_t senders);

  // Checks one received line against what each sender has sent so far (`sent[s]` lines, numbered
  // from 0). Returns the delivery when it is a new one, in order or late: the caller times it and
  // tells the sender its line has arrived. Foreign lines (notices) are ignored.
  std::optional<chat_delivery> receive(std::string_view line, std::span<const std::uint64_t> sent);

  // At the end: what was sent and never arrived is lost.
  void close(std::span<const std::uint64_t> sent);

  const sequence_tracker& from(std::uint32_t sender) const { return from_sender_[sender]; }
  std::uint64_t deliveries() const { return deliveries_; }
  std::uint64_t corrupted() const { return corrupted_; }
  std::uint64_t self_echo() const { return self_echo_; }
  std::uint64_t lost() const;
  std::uint64_t duplicated() const;
  std::uint64_t reordered() const;

 private:
  std::uint32_t self_;
  std::vector<sequence_tracker> from_sender_;
  std::uint64_t deliveries_ = 0;
  std::uint64_t corrupted_ = 0;
  std::uint64_t self_echo_ = 0;
};

}  // namespace netlab::bench
