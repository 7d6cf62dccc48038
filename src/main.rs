//! The `twitch-colorchanger` binary: everything happens in the library's `cli::main`.

fn main() {
    std::process::exit(twitch_colorchanger::cli::main());
}
