#!/usr/bin/env bash
# The suite on every driver at hand, as CI runs it after `cargo test` (which runs on lavapipe with
# 8-lane subgroups, the 8-lane modules required):
#   - the kernel tests on lavapipe with 4-lane subgroups (LP_NATIVE_VECTOR_WIDTH=128) and on
#     SwiftShader (Chromium's Vulkan driver, 4 lanes, other sin/cos/log/exp arithmetic);
#   - a short training run with each kernel family on each driver and on GL, whose validation
#     loss must be within TOLERANCE (relative) of lavapipe's: the same run, other arithmetic.
# Needs mesa-vulkan-drivers and chromium (for SwiftShader); fails where a driver is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFTSHADER=${SWIFTSHADER:-/usr/lib/chromium/vk_swiftshader_icd.json}
# Two epochs of this run, 2026-12-06 on the dev machine: lavapipe (both widths) and GL agree to
# 1e-7; SwiftShader's validation loss is 5e-6 relative away (4e-4 while the draws used the built-in
# log, sin and cos). The bound leaves room for other drivers' exp and log through two epochs.
TOLERANCE=5e-3
RUN=(train --epochs 2 --hidden 64 --latent 4 --batch 256 --seed 3)

[ -f "$SWIFTSHADER" ] || { echo "no SwiftShader at $SWIFTSHADER (apt-get install chromium)" >&2; exit 1; }
# The test build's binaries (the kernel tests and the wgvae binary the CLI tests run): a plain
# `cargo build` would build wgpu again, with other features.
built=$(cargo test --no-run --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        t = m["target"]
        if (t["name"], t["kind"], m["profile"]["test"]) in (("kernels", ["test"], True), ("wgvae", ["bin"], False)):
            print(t["name"], m["executable"])')
kernels=$(echo "$built" | sed -n 's/^kernels //p')
wgvae=$(echo "$built" | sed -n 's/^wgvae //p')
[ -x "$kernels" ] && [ -x "$wgvae" ] || { echo "no kernel tests or wgvae binary from cargo test" >&2; exit 1; }

echo "== kernel tests, lavapipe with 4-lane subgroups"
LP_NATIVE_VECTOR_WIDTH=128 "$kernels"
echo "== kernel tests, SwiftShader"
VK_ICD_FILENAMES=$SWIFTSHADER "$kernels"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
val_loss() { tail -1 "$1/metrics.csv" | cut -d, -f5; }
for family in cpu gpu; do
    "$wgvae" "${RUN[@]}" --kernels "$family" --out "$out/lavapipe-$family" >/dev/null
    want=$(val_loss "$out/lavapipe-$family")
    for driver in lavapipe-128 swiftshader gl; do
        case $driver in
        lavapipe-128) LP_NATIVE_VECTOR_WIDTH=128 "$wgvae" "${RUN[@]}" --kernels "$family" --out "$out/$driver-$family" >/dev/null ;;
        swiftshader) VK_ICD_FILENAMES=$SWIFTSHADER "$wgvae" "${RUN[@]}" --kernels "$family" --out "$out/$driver-$family" >/dev/null ;;
        gl) "$wgvae" "${RUN[@]}" --kernels "$family" --backend gl --out "$out/$driver-$family" >/dev/null ;;
        esac
        got=$(val_loss "$out/$driver-$family")
        echo "== $family kernels, $driver: validation loss $got, lavapipe $want"
        python3 -c "import sys; got, want, tol = map(float, sys.argv[1:]); sys.exit(abs(got - want) > tol * abs(want))" \
            "$got" "$want" "$TOLERANCE" || { echo "more than $TOLERANCE apart" >&2; exit 1; }
    done
done
