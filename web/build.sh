#!/usr/bin/env bash
# Builds web/dist/: the wgvae-web crate for wasm32-unknown-unknown bound by wasm-bindgen (the
# CLI's shaders, kernels and trainer, on the browser's WebGPU), the page, and the embedded
# MNIST files the page fetches. Serve it with any static server:
#   python3 -m http.server -d web/dist
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "web/build.sh: the wasm32 target is missing: rustup target add wasm32-unknown-unknown" >&2
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "web/build.sh: needs wasm-bindgen-cli $want (the wasm-bindgen crate's version in Cargo.lock), found '${have:-none}':" >&2
  echo "  cargo install wasm-bindgen-cli --version =$want" >&2
  exit 1
fi
cargo build --release -p wgvae-web --target wasm32-unknown-unknown
rm -rf web/dist
mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist target/wasm32-unknown-unknown/release/wgvae_web.wasm
cp web/index.html web/app.js web/curves.js web/explorer.js web/style.css web/dist/
cp assets/train-images-idx3-ubyte.gz assets/train-labels-idx1-ubyte.gz web/dist/
echo "built web/dist ($(du -k web/dist/wgvae_web_bg.wasm | cut -f1) KiB of wasm); serve it with: python3 -m http.server -d web/dist"
