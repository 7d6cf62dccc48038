//! Benchmark of the daemon: latency from an own message to the Helix PUT, memory, idle CPU,
//! threads, time to join and shutdown, for N users over TLS and plain WebSocket, against the
//! in-process fake Twitch. Does I/O (loopback sockets, a child process, /proc).
//!
//! `cargo run --release --example bench -- --users 100` (see `--help` and README "Performance").

// A crate root looks for its modules beside itself; these live in examples/bench/ so that
// Cargo does not take them for examples of their own (tests/bench_smoke.rs includes them too).
#[path = "bench/harness.rs"]
mod harness;
#[path = "bench/measure.rs"]
mod measure;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(harness::main_with_args(&args));
}
