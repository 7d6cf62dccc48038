//! libFuzzer target: feeds the fuzzer's bytes to the same checks as the `fuzz_lines`
//! integration test (IRC frame splitting and parsing, typed events, the chat session with
//! and without a known user id, chat commands). No I/O beyond what libFuzzer does itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The integration test's checks, included so both runs check exactly the same things.
/// Its random generators and the imports they need are unused here.
#[allow(dead_code, unused_imports)]
#[path = "../../tests/fuzz_lines.rs"]
mod fuzz_lines;

fuzz_target!(|data: &[u8]| {
    fuzz_lines::check_input(data);
});
