//! In-process fake Twitch for tests and benchmarks (being written).
