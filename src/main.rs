//! The `sluice` binary: parses configuration and wires the crates together.

fn main() {}
