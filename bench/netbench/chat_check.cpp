#include "chat_check.hpp"

namespace netlab::bench {

chat_receiver::chat_receiver(std::uint32_t self, std::size_t senders)
    : self_(self), from_sender_(senders) {}

std::optional<chat_delivery> chat_receiver::receive(std::string_view line,
                                                    std::span<const std::uint64_t> sent) {
  const auto parsed = parse_chat_line(line);
  if (parsed.kind == chat_line_kind::foreign) return std::nullopt;
  const auto& delivery = parsed.delivery;
  // Unreadable numbers, a sender that does not exist, a number not sent yet: as corrupt as a bad
  // byte, and nothing to say which line it was.
  if (!delivery || delivery->sender >= from_sender_.size() ||
      delivery->seq >= sent[delivery->sender]) {
    ++corrupted_;
    return std::nullopt;
  }
  if (delivery->sender == self_) {  // the contract: a sender does not get its own line back
    ++self_echo_;
    return std::nullopt;
  }
  auto& tracker = from_sender_[delivery->sender];
  if (parsed.kind == chat_line_kind::corrupted) {
    // Its numbers are readable: that line arrived, damaged. Counting it as arrived keeps the
    // stream in step, so one bad byte is one error and not also a loss.
    ++corrupted_;
    tracker.record(delivery->seq);
    return std::nullopt;
  }
  if (tracker.record(delivery->seq) == sequence_tracker::verdict::duplicated) return std::nullopt;
  ++deliveries_;
  return delivery;
}

void chat_receiver::close(std::span<const std::uint64_t> sent) {
  for (std::uint32_t s = 0; s < from_sender_.size(); ++s) {
    if (s != self_) from_sender_[s].close(sent[s]);
  }
}

std::uint64_t chat_receiver::lost() const {
  std::uint64_t sum = 0;
  for (const auto& tracker : from_sender_) sum += tracker.lost();
  return sum;
}

std::uint64_t chat_receiver::duplicated() const {
  std::uint64_t sum = 0;
  for (const auto& tracker : from_sender_) sum += tracker.duplicated();
  return sum;
}

std::uint64_t chat_receiver::reordered() const {
  std::uint64_t sum = 0;
  for (const auto& tracker : from_sender_) sum += tracker.reordered();
  return sum;
}

}  // namespace netlab::bench
