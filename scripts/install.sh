#!/usr/bin/env bash
# Builds the release binary (in the same target directory the test suite uses, so
# nothing is compiled twice) and puts `palisade` on PATH: /usr/local/bin as root,
# else ~/.local/bin. Needs Rust (rustup, 1.85 or newer) and about 3 GB of disk for the
# build; the first build takes a few minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade/target}"
if [ "$(id -u)" = 0 ]; then DEST="${PALISADE_INSTALL_DIR:-/usr/local/bin}"; else DEST="${PALISADE_INSTALL_DIR:-$HOME/.local/bin}"; fi
echo "==> building palisade (release) in $CARGO_TARGET_DIR" >&2
cargo build --release --locked -p palisade
mkdir -p "$DEST"
install -m 0755 "$CARGO_TARGET_DIR/release/palisade" "$DEST/palisade"
echo "==> installed $DEST/palisade ($("$DEST/palisade" version))" >&2
case ":$PATH:" in *":$DEST:"*) ;; *) echo "note: $DEST is not on your PATH; add it, e.g. export PATH=\"$DEST:\$PATH\"" >&2 ;; esac
