#!/usr/bin/env bash
# The browser test, kept apart from `cargo test` as the wasm and browser ecosystems keep theirs:
# builds web/dist and the CLI (release), then drives the page in headless Chromium
# (tests/browser.py). Needs chromium and chromium-driver, the wasm32 target and wasm-bindgen-cli;
# each missing piece fails with the command that installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
web/build.sh
cargo build --release
python3 tests/browser.py --cli target/release/wgvae --dist web/dist --out target/browser
