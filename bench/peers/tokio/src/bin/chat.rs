//! Exercise 4: multi-client chat (simple).
//!
//! "TCP server where each client's message is broadcast to all others. Use into_split() + a
//! shared Vec<OwnedWriteHalf> behind a tokio::sync::Mutex."
//!
//!     chat [--port N] [--bind ADDR] [--threads N]
//!
//! Each line a client sends reaches every other client as `ADDR: line\n` (ADDR is the sender's
//! address; the line without its `\r\n`; bytes below 0x20 other than tab, and 0x7f, as `\xNN`).
//! The sender does not get its own line back. There are no commands: `/anything` is a line too.
//!
//! The lesson's design, flaw included: the broadcast writes to each client in turn while holding
//! the lock, so a client that stops reading (its socket buffers full) blocks that write, and with
//! it every other broadcast in the room. A real server gives each client its own bounded queue
//! and writer task instead (netlab's C++ chat shows both).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use netlab_tokio_peers::{accept_failed, announce, fatal, parse_server_args, report, runtime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

const PROGRAM: &str = "chat";

/// The shared write halves, each tagged with its client's id so that a sender can skip itself
/// and remove itself when it leaves. tokio's Mutex, not std's: it is held across `.await`.
type Writers = Arc<Mutex<Vec<(u64, OwnedWriteHalf)>>>;

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

        let writers: Writers = Arc::new(Mutex::new(Vec::new()));
        let next_id = AtomicU64::new(1);
        loop {
            match listener.accept().await {
                Ok((stream, addr)) => {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(client(stream, addr, id, Arc::clone(&writers)));
                }
                Err(e) => accept_failed(PROGRAM, e).await,
            }
        }
    })
}

/// One client: its write half joins the shared list, its read half stays in this task.
async fn client(stream: TcpStream, addr: SocketAddr, id: u64, writers: Writers) {
    if let Err(e) = stream.set_nodelay(true) {
        report(PROGRAM, "set_nodelay", &e);
    }
    let (reader, writer) = stream.into_split();
    writers.lock().await.push((id, writer));

    if let Err(e) = read_lines(reader, addr, id, &writers).await {
        report(PROGRAM, &format!("read from {addr}"), &e);
    }

    // Gone (EOF or error): drop our write half, which closes our side of the connection.
    writers.lock().await.retain(|(other, _)| *other != id);
}

async fn read_lines(
    reader: OwnedReadHalf,
    addr: SocketAddr,
    id: u64,
    writers: &Writers,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Raw bytes up to and including `\n` (or the unterminated rest before EOF).
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(()); // EOF
        }
        broadcast(&message(addr, &line), id, writers).await;
    }
}

/// `ADDR: text\n`, the text being the line without its `\n` and `\r`, escaped.
fn message(addr: SocketAddr, line: &[u8]) -> Vec<u8> {
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() + 32);
    out.extend_from_slice(format!("{addr}: ").as_bytes());
    for &byte in text {
        // Control bytes would let a client drive the others' terminals: show them instead.
        if (byte < 0x20 && byte != b'\t') || byte == 0x7f {
            out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
        } else {
            out.push(byte);
        }
    }
    out.push(b'\n');
    out
}

/// Writes `message` to every client but the sender, in turn, holding the lock throughout (the
/// lesson's flaw: one slow reader stalls everyone). A write that fails means that client is
/// gone: its write half is removed (and dropped) here.
async fn broadcast(message: &[u8], sender: u64, writers: &Writers) {
    let mut writers = writers.lock().await;
    let mut failed = Vec::new();
    for (id, writer) in writers.iter_mut() {
        if *id != sender && writer.write_all(message).await.is_err() {
            failed.push(*id);
        }
    }
    if !failed.is_empty() {
        writers.retain(|(id, _)| !failed.contains(id));
    }
}
