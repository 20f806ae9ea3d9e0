// go_chat: the idiomatic Go chat room, a benchmark peer for netlab's chat.
// One hub goroutine owns the set of clients, so no mutex is needed: clients talk to it through
// channels. Each client has a reader goroutine, a writer goroutine and a bounded outbox.
// Protocol: every line a client sends reaches every other client as "ADDR: line\n", with the
// line ending (\n or \r\n) stripped and control bytes other than tab shown as \xNN (lowercase
// hex), as netlab's chat does. No commands (/nick and so on): this peer measures relaying.
package main

import (
	"bufio"
	"flag"
	"net"

	"netlab/bench/peers/go/internal/peer"
)

// Messages a client may lag behind before it is dropped; --outbox, as in netlab's chat.
// 256 catches a client that stopped reading, but an unthrottled flood (100000 lines in one
// burst) drops honest readers too: the hub fills outboxes faster than their writers get a CPU.
var outbox = flag.Int("outbox", 256, "messages queued for one client; one more and it is dropped")

const maxLine = 64 << 10 // longer lines end the sender's connection (bufio.Scanner's rule)

type client struct {
	conn *net.TCPConn
	addr string
	out  chan []byte // the outbox: the hub sends, the writer goroutine receives
}

type message struct {
	from *client
	text []byte // already formatted: shared, read-only, by every outbox it is put in
}

type hub struct {
	register, unregister chan *client
	broadcast            chan message
}

// run is the only goroutine touching clients, so the map needs no lock.
func (h *hub) run() {
	clients := make(map[*client]bool)
	drop := func(c *client) {
		delete(clients, c)
		close(c.out) // the writer sends what is left, then closes the connection
	}
	for {
		select {
		case c := <-h.register:
			clients[c] = true
		case c := <-h.unregister:
			if clients[c] { // it may have been dropped already
				drop(c)
			}
		case m := <-h.broadcast:
			for c := range clients {
				if c == m.from {
					continue // the sender does not get its own line back
				}
				// Never block the hub on one client: a full outbox means that client reads
				// slower than the room talks. Waiting would stall everyone, so it goes.
				select {
				case c.out <- m.text:
				default:
					drop(c)
					// Closing the channel is not enough: its writer may be blocked in
					// conn.Write on a peer that never reads. Closing the socket unblocks it.
					c.conn.Close()
				}
			}
		}
	}
}

// format builds the line once per message, in the sender's reader goroutine: the hub, the one
// goroutine everybody waits on, only hands out the result.
func format(addr string, line []byte) []byte {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(addr)+2+len(line)+1)
	b = append(append(b, addr...), ": "...)
	for _, ch := range line {
		if (ch < 0x20 && ch != '\t') || ch == 0x7f {
			b = append(b, '\\', 'x', hex[ch>>4], hex[ch&0xf])
		} else {
			b = append(b, ch)
		}
	}
	return append(b, '\n')
}

func (c *client) readLoop(h *hub) {
	defer func() { h.unregister <- c }()
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	// Scan strips "\n" and a "\r" before it, and also yields an unterminated last line at EOF.
	for sc.Scan() {
		h.broadcast <- message{from: c, text: format(c.addr, sc.Bytes())}
	}
}

func (c *client) writeLoop() {
	defer c.conn.Close() // ends readLoop too, if the peer is still sending
	w := bufio.NewWriterSize(c.conn, 64<<10)
	for msg := range c.out {
		if _, err := w.Write(msg); err != nil {
			break
		}
		// Gather writes: one syscall for everything queued, not one per message.
		if len(c.out) == 0 && w.Flush() != nil {
			break
		}
	}
	w.Flush()
	// After a write error the hub may still send to c.out until it is full, then drops c:
	// nobody blocks on a channel no one reads.
}

func main() {
	ln := peer.Listen(func() string {
		if *outbox < 1 {
			return "--outbox must be at least 1"
		}
		return ""
	})
	h := &hub{make(chan *client), make(chan *client), make(chan message)}
	go h.run()
	peer.Serve(ln, func(conn *net.TCPConn) {
		c := &client{conn: conn, addr: conn.RemoteAddr().String(), out: make(chan []byte, *outbox)}
		h.register <- c
		go c.writeLoop()
		c.readLoop(h)
	})
}
