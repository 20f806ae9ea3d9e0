//! Exercise 3: connection counter.
//!
//! "Build a TCP server that tracks total connections with an Arc<AtomicUsize>. Each new
//! connection prints "Connection #N from {addr}". Echo data back, then increment the counter on
//! disconnect."
//!
//!     conn_counter [--port N] [--bind ADDR] [--threads N]
//!
//! stdout:  Connection #N from ADDR
//!          Disconnected #N from ADDR (active A, closed C)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use netlab_tokio_peers::{accept_failed, announce, fatal, parse_server_args, report, runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROGRAM: &str = "conn_counter";

/// Shared by every connection task, on every worker thread: atomics, no lock.
#[derive(Default)]
struct Counters {
    total: AtomicUsize,  // connections accepted so far: numbers them
    active: AtomicUsize, // connected right now
    closed: AtomicUsize, // disconnected so far: the "counter on disconnect"
}

fn main() {
    let args = parse_server_args(PROGRAM, std::env::args().skip(1));
    runtime(PROGRAM, args.threads).block_on(async {
        let listener = TcpListener::bind(args.addr())
            .await
            .unwrap_or_else(|e| fatal(PROGRAM, &format!("cannot listen on {}", args.addr()), e));
        announce(
            listener
                .local_addr()
                .unwrap_or_else(|e| fatal(PROGRAM, "local_addr", e)),
        );

        let counters = Arc::new(Counters::default());
        loop {
            let (stream, addr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(PROGRAM, e).await;
                    continue;
                }
            };
            // Numbered and printed here, in the accept loop: the Connection lines come out in
            // the order of N, and always before that connection's Disconnected line.
            // (Relaxed is enough: each counter is its own number, nothing else is published.)
            let number = counters.total.fetch_add(1, Ordering::Relaxed) + 1;
            counters.active.fetch_add(1, Ordering::Relaxed);
            say(format_args!("Connection #{number} from {addr}"));

            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                if let Err(e) = echo(stream).await {
                    report(PROGRAM, &format!("connection #{number} from {addr}"), &e);
                }
                disconnected(&counters, number, addr);
            });
        }
    })
}

/// Echoes the bytes as they come, until the client closes its side.
async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(()); // EOF
        }
        stream.write_all(&buf[..n]).await?;
    }
    // Dropping the stream closes the connection.
}

fn disconnected(counters: &Counters, number: usize, addr: SocketAddr) {
    let active = counters.active.fetch_sub(1, Ordering::Relaxed) - 1;
    let closed = counters.closed.fetch_add(1, Ordering::Relaxed) + 1;
    say(format_args!(
        "Disconnected #{number} from {addr} (active {active}, closed {closed})"
    ));
}

/// println!, except that a closed stdout is ignored instead of panicking: the echo goes on.
/// Rust's stdout is line-buffered, so each line is one write(2), whole, under stdout's lock.
/// (Whoever runs the server must read or redirect stdout: a full pipe would block a worker.)
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
