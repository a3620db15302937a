//! The `swantrail` command line: turns arguments into calls to the library.

fn main() {}
