// go_echo: the idiomatic Go line echo, a benchmark peer for netlab's echo servers.
// One goroutine per connection; the runtime's netpoller turns the blocking-looking reads and
// writes into epoll underneath, so this is the "threads are cheap" style done right.
package main

import (
	"bufio"
	"net"

	"netlab/bench/peers/go/internal/peer"
)

const bufSize = 64 << 10

func handle(c *net.TCPConn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, bufSize)
	w := bufio.NewWriterSize(c, bufSize)
	for {
		// ReadSlice returns a view into r's buffer: no allocation per line. The view is only
		// valid until the next read, which is fine because w.Write copies it (or writes it out).
		line, err := r.ReadSlice('\n')
		if _, werr := w.Write(line); werr != nil {
			return
		}
		// ErrBufferFull: a line longer than the buffer. We have written its first 64 KiB;
		// the loop carries on with the rest, so the echo stays byte for byte.
		if err != nil && err != bufio.ErrBufferFull {
			w.Flush() // EOF (or a read error): the unterminated tail goes back too
			return
		}
		// Gather writes: flush only when every line already received has been answered.
		// A client pipelining 1000 lines gets a few large writes, not 1000 small ones.
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

func main() {
	peer.Serve(peer.Listen(nil), handle)
}
