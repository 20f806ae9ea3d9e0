#include "server.hpp"

#include "common/listener.hpp"

namespace netlab::chat {

void start_server(runtime& rt, tcp_acceptor acceptor, const options& opts) {
  if (opts.design == design::queued) {
    auto chat_room = std::make_shared<room>();
    start_accepting(rt, std::move(acceptor), [&rt, opts, chat_room](auto socket, const auto& peer) {
      start_queued_session(std::move(socket), peer, chat_room, opts, rt.shutdown());
    });
  } else {
    auto chat_room = make_lesson_room(rt.context());
    start_accepting(rt, std::move(acceptor), [&rt, opts, chat_room](auto socket, const auto& peer) {
      start_lesson_session(std::move(socket), peer, chat_room, opts, rt.shutdown());
    });
  }
}

}  // namespace netlab::chat
