//! What the four programs share: the command line of a server (`--port`, `--bind`, `--threads`),
//! building the tokio runtime, and the `listening on ADDR:PORT` line the benchmarks wait for.
//! Nothing here is part of the lesson; the lesson's code is in `src/bin/*.rs`.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::exit;

/// The options every server takes.
pub struct ServerArgs {
    /// `--port N`: 0 (the default) asks the kernel for a free port.
    pub port: u16,
    /// `--bind ADDR`: the address to listen on, 127.0.0.1 unless told.
    pub bind: IpAddr,
    /// `--threads N`: tokio's worker threads; `None` keeps tokio's default, one per core.
    pub threads: Option<usize>,
}

impl ServerArgs {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

/// A bad command line: one line on stderr, exit status 2.
pub fn usage_error(program: &str, message: &str) -> ! {
    eprintln!("{program}: {message}");
    exit(2)
}

/// A failure to start (the port is taken, ...): one line on stderr, exit status 1.
pub fn fatal(program: &str, what: &str, error: io::Error) -> ! {
    eprintln!("{program}: {what}: {error}");
    exit(1)
}

/// Parses `--port N --bind ADDR --threads N` (also `--port=N`) from `args`, which must not contain
/// the program name. Anything else is a usage error.
pub fn parse_server_args(program: &str, args: impl IntoIterator<Item = String>) -> ServerArgs {
    let mut parsed = ServerArgs {
        port: 0,
        bind: IpAddr::from([127, 0, 0, 1]),
        threads: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage_error(program, &format!("option {name} needs a value")))
        };
        match name.as_str() {
            "--port" => parsed.port = parse_value(program, &name, &value()),
            "--bind" => parsed.bind = parse_value(program, &name, &value()),
            "--threads" => {
                let threads: usize = parse_value(program, &name, &value());
                if threads == 0 {
                    usage_error(program, "--threads must be at least 1");
                }
                parsed.threads = Some(threads);
            }
            _ => usage_error(program, &format!("unknown option {arg:?}")),
        }
    }
    parsed
}

/// Parses one option's value, or exits with a usage error naming the option.
pub fn parse_value<T: std::str::FromStr>(program: &str, option: &str, text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| usage_error(program, &format!("invalid value {text:?} for {option}")))
}

/// tokio's multi-thread runtime, with `threads` workers (tokio's default: one per core).
/// This is what `#[tokio::main]` expands to, plus the worker count.
pub fn runtime(program: &str, threads: Option<usize>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .unwrap_or_else(|e| fatal(program, "cannot start the runtime", e))
}

/// Prints `listening on ADDR:PORT` (the address really bound) and flushes it at once: whoever
/// started the program reads this line to learn the port.
pub fn announce(addr: SocketAddr) {
    let mut out = io::stdout().lock();
    // A closed stdout is no reason to stop serving.
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Errors that are just a peer going away (reset, closed pipe) are normal for a server and are
/// not reported; anything else goes to stderr, one line.
pub fn report(program: &str, what: &str, error: &io::Error) {
    use io::ErrorKind::*;
    if !matches!(
        error.kind(),
        ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof
    ) {
        eprintln!("{program}: {what}: {error}");
    }
}

/// Waits a little after a failed accept (out of descriptors, say) instead of spinning on it.
pub async fn accept_failed(program: &str, error: io::Error) {
    report(program, "accept", &error);
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
}
