#!/usr/bin/env bash
# Build the .deb and the .rpm: the release binary, then the man pages and
# completions it generates (into target/packaging/, where the package
# metadata in Cargo.toml takes them from), then cargo deb and cargo
# generate-rpm. Needs cargo-deb and cargo-generate-rpm (.ci/run installs
# them). Prints the two package paths on its last two lines.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
bin=target/release/swantrail
out=target/packaging
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
# The release profile keeps debug info (profiling, backtraces); the
# packages get the binary without it, symbols kept, the same in both.
objcopy --strip-debug "$bin" "$out/swantrail"

"$bin" man --out-dir "$out/man"
# -n: no name or time stamp in the archive, so the same pages give the same bytes.
gzip -9n "$out"/man/*
"$bin" completions bash >"$out/completions/swantrail.bash"
"$bin" completions zsh >"$out/completions/_swantrail"
"$bin" completions fish >"$out/completions/swantrail.fish"

deb=$(cargo deb --no-build --locked 2>&1 | tee /dev/stderr | tail -n 1)
cargo generate-rpm >&2
rpm=$(ls -t target/generate-rpm/swantrail-*.rpm | head -n 1)
echo "$deb"
echo "$rpm"
