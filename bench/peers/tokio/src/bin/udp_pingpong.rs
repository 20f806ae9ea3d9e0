//! Exercise 2: UDP ping-pong.
//!
//! "Create two UDP sockets. Socket A sends "ping" to Socket B. Socket B replies "pong". Print the
//! round-trip time."
//!
//!     udp_pingpong [--count N] [--interval MS]          A and B in this process, on loopback
//!     udp_pingpong serve [--port N] [--bind ADDR] [--threads N]           B only
//!
//! The wire: A sends `ping <seq> xxx...` (64 bytes); B answers every datagram that starts with
//! `ping` with the same bytes, starting with `pong` instead; it ignores anything else.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlab_tokio_peers::{announce, fatal, parse_server_args, parse_value, runtime, usage_error};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const PROGRAM: &str = "udp_pingpong";
const PING_SIZE: usize = 64;
/// How long A waits for each pong before calling it lost.
const TIMEOUT: Duration = Duration::from_secs(1);

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        args.next();
        let args = parse_server_args(PROGRAM, args);
        runtime(PROGRAM, args.threads).block_on(async {
            let b = UdpSocket::bind(args.addr())
                .await
                .unwrap_or_else(|e| fatal(PROGRAM, &format!("cannot bind {}", args.addr()), e));
            announce(
                b.local_addr()
                    .unwrap_or_else(|e| fatal(PROGRAM, "local_addr", e)),
            );
            serve(b).await
        });
        return;
    }

    let (mut count, mut interval) = (5u64, 100u64);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage_error(PROGRAM, &format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--count" => count = parse_value(PROGRAM, &arg, &value()),
            "--interval" => interval = parse_value(PROGRAM, &arg, &value()),
            _ => usage_error(
                PROGRAM,
                &format!("unknown option {arg:?} (subcommand: serve)"),
            ),
        }
    }
    // A and B share one thread: the times measure the sockets and the reactor, not hand-offs
    // between worker threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fatal(PROGRAM, "cannot start the runtime", e));
    let received = rt.block_on(async {
        let localhost: SocketAddr = ([127, 0, 0, 1], 0).into();
        let b = UdpSocket::bind(localhost)
            .await
            .unwrap_or_else(|e| fatal(PROGRAM, "bind B", e));
        let b_addr = b
            .local_addr()
            .unwrap_or_else(|e| fatal(PROGRAM, "local_addr", e));
        announce(b_addr);
        tokio::spawn(serve(b));

        let a = UdpSocket::bind(localhost)
            .await
            .unwrap_or_else(|e| fatal(PROGRAM, "bind A", e));
        ping(a, b_addr, count, Duration::from_millis(interval)).await
    });
    println!("{count} sent, {received} received");
    std::process::exit(if received > 0 { 0 } else { 1 });
}

/// Socket B: answers pings, forever.
async fn serve(b: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match b.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if buf[..n].starts_with(b"ping") {
                    // Rewritten in place: the pong is the ping with its first four bytes changed.
                    buf[..4].copy_from_slice(b"pong");
                    if let Err(e) = b.send_to(&buf[..n], from).await {
                        eprintln!("{PROGRAM}: send to {from}: {e}");
                    }
                }
            }
            Err(e) => eprintln!("{PROGRAM}: recv: {e}"),
        }
    }
}

/// Socket A: `count` pings to B, one every `interval`; prints each round trip; returns how many
/// pongs came back.
async fn ping(a: UdpSocket, b: SocketAddr, count: u64, interval: Duration) -> u64 {
    // connect() fixes the peer: send/recv need no address, and datagrams from others are dropped.
    a.connect(b)
        .await
        .unwrap_or_else(|e| fatal(PROGRAM, "connect", e));
    let mut received = 0;
    let mut reply = vec![0u8; 65536];
    for seq in 1..=count {
        if seq > 1 {
            tokio::time::sleep(interval).await;
        }
        let mut request = format!("ping {seq} ").into_bytes();
        request.resize(PING_SIZE.max(request.len()), b'x');

        let start = Instant::now();
        if let Err(e) = a.send(&request).await {
            println!("from {b}: seq={seq} {e}");
            continue;
        }
        // Wait for the pong that mirrors this ping; a late pong of an earlier ping is skipped.
        let answer = timeout(TIMEOUT, async {
            loop {
                match a.recv(&mut reply).await {
                    Ok(n) if reply[..n].starts_with(b"pong") && reply[4..n] == request[4..] => {
                        return Ok(start.elapsed());
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match answer {
            Ok(Ok(rtt)) => {
                received += 1;
                let ms = rtt.as_secs_f64() * 1000.0;
                println!("pong from {b}: seq={seq} time={ms:.3} ms");
            }
            Ok(Err(e)) => println!("from {b}: seq={seq} {e}"),
            Err(_) => println!("no pong from {b}: seq={seq} timed out"),
        }
    }
    received
}
