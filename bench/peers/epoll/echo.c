// epoll_echo: the smallest line echo this machine can run, the ceiling the other servers are
// measured against. One thread, level-triggered epoll, a 64 KiB buffer per connection.
// Each readiness event costs at most one read and one write: every complete line read so far
// goes back in a single write, the unterminated tail waits for the next read.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF = 64 * 1024, MAX_EVENTS = 256 };

struct conn {
  int fd;
  int eof;          // the peer shut down its side: close once everything is sent
  size_t len;       // bytes held in buf
  size_t sent, end; // buf[sent..end) is output the socket did not take yet; end == 0: none
  char buf[BUF];
};

static int ep;     // the epoll instance
static int spare;  // a reserved descriptor, given up to refuse a connection when out of them

static void watch(struct conn *c, int op, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) { perror("epoll_ctl"); exit(1); }
}

static void drop(struct conn *c) {  // closing the fd also removes it from epoll
  close(c->fd);
  free(c);
}

// One write of buf[sent..end). Returns 1 when all is sent, 0 when some is left, -1 on error.
static int send_some(struct conn *c) {
  // MSG_NOSIGNAL: a peer that went away gives EPIPE here, not a SIGPIPE that kills us.
  ssize_t n = send(c->fd, c->buf + c->sent, c->end - c->sent, MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  c->sent += (size_t)n;
  if (c->sent < c->end) return 0;
  memmove(c->buf, c->buf + c->end, c->len - c->end);  // keep the unterminated tail
  c->len -= c->end;
  c->sent = c->end = 0;
  return 1;
}

// Sends what is pending; if the socket is full, stops reading until it drains (backpressure:
// a client that does not read its answers stops being read, instead of growing our memory).
static void reply(struct conn *c, int reading) {
  int r = send_some(c);
  if (r < 0 || (r == 1 && c->eof)) drop(c);
  else if (r == 0 && reading) watch(c, EPOLL_CTL_MOD, EPOLLOUT);
  else if (r == 1 && !reading) watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void on_readable(struct conn *c) {
  size_t old = c->len;  // buf[0..old) is a tail without '\n'
  ssize_t n = read(c->fd, c->buf + old, BUF - old);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) drop(c);
    return;
  }
  if (n == 0) {  // EOF: the unterminated tail goes back too, then we close
    c->eof = 1;
    c->end = c->len;
  } else {
    c->len += (size_t)n;
    // Only the new bytes can hold a '\n'. A full buffer without one is a line longer than
    // 64 KiB: send it as it is, so the echo stays byte for byte.
    char *nl = memrchr(c->buf + old, '\n', (size_t)n);
    c->end = nl ? (size_t)(nl - c->buf) + 1 : c->len == BUF ? BUF : 0;
  }
  if (c->end) reply(c, 1);
  else if (c->eof) drop(c);  // EOF with nothing left to send
  // else: no complete line yet, wait for more

}

static void on_accept(int lfd) {
  for (;;) {  // take every pending connection: the listener is level-triggered anyway
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && spare >= 0) {
        // Out of descriptors. The connection stays queued and the listener stays readable,
        // so returning would spin. Free the spare, accept and close at once (the client sees
        // a close, not a hang), take the spare back.
        close(spare);
        fd = accept(lfd, NULL, NULL);
        if (fd >= 0) close(fd);
        spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;  // the queue is empty: accept4 would say EMFILE forever
        continue;
      }
      if (errno != EAGAIN) perror("accept");
      return;
    }
    int one = 1;  // answers are small and must not wait for Nagle's algorithm
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) { close(fd); continue; }
    c->fd = fd;
    watch(c, EPOLL_CTL_ADD, EPOLLIN);
  }
}

static int listen_on(const char *bind_addr, const char *port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *ai;
  int err = getaddrinfo(bind_addr, port, &hints, &ai);
  if (err) { fprintf(stderr, "bad --bind %s: %s\n", bind_addr, gai_strerror(err)); exit(2); }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
    fprintf(stderr, "cannot listen on %s:%s: %s\n", bind_addr, port, strerror(errno));
    exit(1);
  }
  freeaddrinfo(ai);

  struct sockaddr_storage sa;  // the port really bound, for --port 0
  socklen_t salen = sizeof sa;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  getsockname(fd, (struct sockaddr *)&sa, &salen);
  getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, serv, sizeof serv,
              NI_NUMERICHOST | NI_NUMERICSERV);
  printf(strchr(host, ':') ? "listening on [%s]:%s\n" : "listening on %s:%s\n", host, serv);
  fflush(stdout);  // a benchmark script waits for this line
  return fd;
}

int main(int argc, char **argv) {
  const char *bind_addr = "127.0.0.1", *port = "0";
  static const struct option opts[] = {
      {"port", required_argument, 0, 'p'}, {"bind", required_argument, 0, 'b'}, {0, 0, 0, 0}};
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    if (o == 'p') port = optarg;
    else if (o == 'b') bind_addr = optarg;
    else goto usage;  // getopt_long has already said what is wrong
  }
  char *rest;
  long p = strtol(port, &rest, 10);
  if (optind != argc || !*port || *rest || p < 0 || p > 65535) goto usage;

  spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int lfd = listen_on(bind_addr, port);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};  // NULL marks the listener
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) { perror("epoll"); return 1; }

  struct epoll_event events[MAX_EVENTS];
  for (;;) {  // runs until SIGTERM or SIGINT kills the process: no state worth saving
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      // Errors and hang-ups are reported whatever we asked for; the read or write that
      // follows sees them and drops the connection.
      if (!c) on_accept(lfd);
      else if (c->end) reply(c, 0);  // waiting for EPOLLOUT: finish the pending write
      else on_readable(c);
    }
  }

usage:
  fprintf(stderr, "usage: %s [--port N (0..65535, 0 = free)] [--bind ADDR]\n", argv[0]);
  return 2;
}
