// Package peer holds what both Go benchmark peers share: the command line and the listener.
package peer

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
)

// Listen parses --port, --bind, --threads and the program's own flags (checked by check, which
// returns what is wrong or ""), binds the socket and announces it on stdout.
// The flag package exits with status 2 on a bad option, which is the contract we want.
func Listen(check func() string) net.Listener {
	port := flag.Int("port", 0, "TCP port (0 = a free one)")
	bind := flag.String("bind", "127.0.0.1", "address to listen on")
	threads := flag.Int("threads", runtime.NumCPU(), "OS threads running Go code (GOMAXPROCS)")
	flag.Parse()
	if flag.NArg() != 0 || *port < 0 || *port > 65535 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "bad option: --port 0..65535, --threads >= 1, no positional arguments")
		os.Exit(2)
	}
	if check != nil {
		if msg := check(); msg != "" {
			fmt.Fprintln(os.Stderr, "bad option:", msg)
			os.Exit(2)
		}
	}
	// GOMAXPROCS bounds the threads running goroutines at once: the Go counterpart of a
	// thread pool size (goroutines themselves are not threads).
	runtime.GOMAXPROCS(*threads)

	ln, err := net.Listen("tcp", net.JoinHostPort(*bind, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot listen:", err)
		os.Exit(1)
	}
	// os.Stdout is not buffered in Go: the line reaches the benchmark script at once.
	fmt.Printf("listening on %s\n", ln.Addr())
	return ln
}

// Serve accepts forever and runs handle on its own goroutine for each connection.
func Serve(ln net.Listener, handle func(*net.TCPConn)) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			// EMFILE and friends: the listener stays readable, so retrying at once would spin.
			// Back off 5 ms, doubling up to 1 s, as net/http's Server does.
			if pause = 2 * pause; pause == 0 {
				pause = 5 * time.Millisecond
			} else if pause > time.Second {
				pause = time.Second
			}
			fmt.Fprintln(os.Stderr, "accept:", err)
			time.Sleep(pause)
			continue
		}
		pause = 0
		tc := c.(*net.TCPConn)
		tc.SetNoDelay(true) // Go's default already; said here because the benchmark relies on it
		go handle(tc)
	}
}
