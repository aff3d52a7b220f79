#!/usr/bin/env bash
# ../shared/gpu.md's measurements in one go, for a session that is lent a machine with a GPU (the
# `device` tool: one run of a few minutes, nothing to fetch there). Two halves:
#
#   tests/gpu_check.sh stage   here: builds the release binary and the kernel tests, and puts them,
#                              the Vulkan loader's package and Fashion-MNIST in .gpu/ (git-ignored
#                              through .git/info/exclude; about 50 MB, under the tool's 64 MiB)
#   tests/gpu_check.sh run     there, with `carry: [".gpu"]`: every step of gpu.md, each under a
#                              timeout, into $OUT (report.txt, bench.json, sweep.json, metrics CSVs)
#
# The report keeps going past a failed step and says which failed. EPOCHS=1 shortens a trial run.
# The kernel tests run on the GPU's adapter; `devices --plan` first says which kernels its plan
# picks there, so that the figures after it can be read against the plan.
set -u

stage() {
    set -e
    cargo build --release
    local tests
    tests=$(cargo test --release --test kernels --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "kernels":
        print(m["executable"])')
    rm -rf .gpu && mkdir -p .gpu/debs .gpu/fashion
    grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >>.git/info/exclude
    cp target/release/wgvae .gpu/wgvae
    cp "$tests" .gpu/kernel-tests
    strip .gpu/wgvae .gpu/kernel-tests
    local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    mkdir -p /tmp/amd64/partial
    apt-get $o update -qq
    (cd .gpu/debs && apt-get $o download libvulkan1 dataset-fashion-mnist)
    rm -rf /tmp/fashion-deb && dpkg -x .gpu/debs/dataset-fashion-mnist_*.deb /tmp/fashion-deb
    cp /tmp/fashion-deb/usr/share/datasets/fashion-mnist/*-ubyte* .gpu/fashion/
    rm .gpu/debs/dataset-fashion-mnist_*.deb
    du -sh .gpu
}

run() {
    local out=${OUT:-/tmp/gpu-check} failed="" epochs=${EPOCHS:-3}
    mkdir -p "$out"
    local report=$out/report.txt w=.gpu/wgvae
    step() { # step NAME SECONDS COMMAND...: the command's output into the report, under a timeout
        local name=$1 limit=$2
        shift 2
        echo "== $name: $*" | tee -a "$report"
        local t0=$SECONDS
        timeout "$limit" "$@" >>"$report" 2>&1
        local rc=$?
        [ $rc -eq 0 ] || { failed="$failed $name"; echo "(failed: exit $rc)" >>"$report"; }
        echo "(took $((SECONDS - t0)) s)" | tee -a "$report"
    }
    ldconfig -p | grep -q libvulkan.so.1 || { for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done; ldconfig; }
    if [ -z "${VK_DRIVER_FILES:-}" ]; then
        local icd
        icd=$(find /usr/local/nvidia /usr/share/vulkan /etc/vulkan -name 'nvidia_icd*.json' 2>/dev/null | head -1)
        [ -n "$icd" ] && export VK_DRIVER_FILES=$icd
    fi
    step gpu 30 nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv
    step devices 60 "$w" devices --plan
    step bench 120 sh -c "$w bench --json >$out/bench.json"
    step sweep 240 sh -c "$w bench --sweep-batch 128 512 2048 --sweep-hidden 400 1024 --json >$out/sweep.json"
    step train-fashion 240 "$w" train --data .gpu/fashion --epochs "$epochs" --out /tmp/wgvae-fashion
    cp /tmp/wgvae-fashion/metrics.csv "$out/fashion-metrics.csv" 2>/dev/null
    step train-digits 120 "$w" train --epochs "$epochs" --out /tmp/wgvae-digits
    # lavapipe's run of the same command (CPU kernels, 2026-12-05): it must match to float noise.
    echo "lavapipe, --epochs 3: validation 202.034, 164.117, 150.969 after epochs 1-3" >>"$report"
    cp /tmp/wgvae-digits/metrics.csv "$out/digits-metrics.csv" 2>/dev/null
    export PYTHONUNBUFFERED=1
    step torch-eager 240 python3 tests/pytorch_vae.py --device cuda --data .gpu/fashion --epochs "$epochs"
    step torch-compiled 300 python3 tests/pytorch_vae.py --device cuda --compile --data .gpu/fashion --epochs "$epochs"
    step kernel-tests 300 .gpu/kernel-tests
    echo "== failed steps:${failed:- none}" | tee -a "$report"
}

case "${1:-}" in
stage) stage ;;
run) run ;;
*)
    echo "usage: tests/gpu_check.sh stage|run (see the comment at its top)" >&2
    exit 2
    ;;
esac
