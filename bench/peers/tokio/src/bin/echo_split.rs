//! Exercise 1: TCP echo with split.
//!
//! "Write a TCP echo server that uses into_split() to put reading and writing in separate tasks.
//! The reader reads lines and sends them through a tokio::sync::mpsc channel to the writer."
//!
//!     echo_split [--port N] [--bind ADDR] [--threads N]
//!
//! Every line comes back byte for byte (a `\r` before the `\n`, bytes that are not UTF-8, an
//! unterminated last line before EOF), then the server closes its side.

use netlab_tokio_peers::{accept_failed, announce, fatal, parse_server_args, report, runtime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PROGRAM: &str = "echo_split";

/// Lines a connection may have read but not yet written back. When the writer falls behind (the
/// client does not read), the reader waits in `send` and stops reading: back-pressure.
const QUEUE: usize = 64;

fn main() {
    let args = parse_server_args(PROGRAM, std::env::args().skip(1));
    runtime(PROGRAM, args.threads).block_on(async {
        // The accept loop of the lesson.
        let listener = TcpListener::bind(args.addr())
            .await
            .unwrap_or_else(|e| fatal(PROGRAM, &format!("cannot listen on {}", args.addr()), e));
        announce(
            listener
                .local_addr()
                .unwrap_or_else(|e| fatal(PROGRAM, "local_addr", e)),
        );
        loop {
            match listener.accept().await {
                Ok((stream, _addr)) => handle_connection(stream),
                Err(e) => accept_failed(PROGRAM, e).await,
            }
        }
    })
}

/// One connection: `into_split()` gives two owned halves, each moved into its own task.
fn handle_connection(stream: TcpStream) {
    // Small echoes must not wait for Nagle's algorithm.
    if let Err(e) = stream.set_nodelay(true) {
        report(PROGRAM, "set_nodelay", &e);
    }
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    tokio::spawn(read_loop(reader, tx));
    tokio::spawn(write_loop(writer, rx));
}

/// Reads lines and hands each one, `\n` included, to the writer.
async fn read_loop(reader: OwnedReadHalf, tx: mpsc::Sender<Vec<u8>>) {
    let mut reader = BufReader::new(reader);
    loop {
        // `read_until` keeps the raw bytes (`lines()` would want UTF-8 and drop the `\r\n`).
        // A line has no length limit here: this is the lesson's code, not a hardened server.
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => break, // EOF (an unterminated last line came through the arm below first)
            Ok(_) => {
                // Waits while the channel is full; fails only when the writer has gone.
                if tx.send(line).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                report(PROGRAM, "read", &e);
                break;
            }
        }
    }
    // Dropping `tx` closes the channel: the writer writes what is queued, then shuts down.
}

/// Writes every line it receives back to the client.
async fn write_loop(writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    if let Err(e) = write_lines(writer, &mut rx).await {
        report(PROGRAM, "write", &e);
    }
    // Returning drops `rx`: a reader still sending sees the channel closed and stops.
}

async fn write_lines(
    writer: OwnedWriteHalf,
    rx: &mut mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    // Idiomatic tokio: a BufWriter gathers the lines, and we flush only when the channel is
    // momentarily empty, so a burst of short lines costs one write(2), not one per line.
    // (A line longer than the buffer's 8 KiB skips the buffer and is written directly.)
    let mut writer = BufWriter::new(writer);
    while let Some(line) = rx.recv().await {
        writer.write_all(&line).await?;
        // Take what else is already queued (at most a channel's worth, so that a client that
        // never pauses still gets flushes) without waiting, then flush once.
        for _ in 1..QUEUE {
            match rx.try_recv() {
                Ok(line) => writer.write_all(&line).await?,
                Err(_) => break,
            }
        }
        writer.flush().await?;
    }
    // The reader saw EOF (or failed) and everything it read is written: send our FIN.
    writer.shutdown().await
}
