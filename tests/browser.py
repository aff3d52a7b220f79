#!/usr/bin/env python3
"""The browser test (web/test.sh runs it after building web/dist and the CLI): the page in headless
Chromium, driven over WebDriver (Debian's chromedriver; the protocol is plain HTTP and JSON, so
the standard library is the client).

It asserts that an autostart run's losses after one epoch equal the CLI's on the same data and
seed up to the adapters' rounding, that the checkpoint the page downloads loads in the CLI and a
checkpoint the CLI wrote opens in the page, that the latent explorer redraws when a slider moves,
that a screenshot after training is not blank, and that a browser without WebGPU, a model past the
adapter's limits and a corrupt checkpoint each get a message. It never passes by skipping: without Chromium it fails and says how to install it.

usage: tests/browser.py --cli target/release/wgvae --dist web/dist [--out target/browser]
"""
import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from png import decode_png  # tests/png.py

EPOCHS, SEED = 1, 3
# Per-example losses of one epoch, page (SwiftShader) against CLI (lavapipe or GL). The kernels,
# data, shuffles and random draws are the same; the adapters round exp, log and sums differently.
# With the weights held still (--lr 1e-9) that leaves a few thousandths of a nat (seen: 0.001);
# training amplifies it along the trajectory (seen: 0.05 on the training loss and 0.25 on the
# sampled validation loss after one epoch at the default --lr), so that run's terms are held to a
# share of their split's loss.
STILL_LR, STILL_TOLERANCE = "1e-9", 0.01
TRAINED_RELATIVE_TOLERANCE = 0.005
LOSSES = ("train_loss", "train_rec", "train_kl", "val_loss", "val_rec", "val_kl")


def fail(message):
    print(f"browser test FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript"}

    def log_message(self, *args):
        pass


def serve(directory):
    handler = functools.partial(Handler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class WebDriver:
    """The few WebDriver commands the test needs, over HTTP."""

    def __init__(self, port, args, downloads):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": shutil.which("chromium"),
            "args": args,
            "prefs": {"download.default_directory": downloads, "download.prompt_for_download": False},
        }}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=900) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as e:
            fail(f"WebDriver {method} {path}: {e.read().decode(errors='replace')[:2000]}")

    def s(self, path):
        return f"/session/{self.session}{path}"

    def go(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def title(self):
        return self.call("GET", self.s("/title"))

    def script(self, source, *args):
        """Runs an async script: its last argument is the callback that returns a value."""
        return self.call("POST", self.s("/execute/async"), {"script": source, "args": list(args)})

    def element(self, css):
        found = self.call("POST", self.s("/element"), {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def click(self, css):
        self.call("POST", self.s(f"/element/{self.element(css)}/click"), {})

    def send_keys(self, css, text):
        self.call("POST", self.s(f"/element/{self.element(css)}/value"), {"text": text})

    def screenshot(self):
        return base64.b64decode(self.call("GET", self.s("/screenshot")))

    def quit(self):
        try:
            self.call("DELETE", self.s(""))
        except SystemExit:
            pass


def wait_title(driver, prefixes, seconds):
    """Waits until the page title starts with one of `prefixes`; returns it (or fails)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        title = driver.title()
        if title.startswith("wgvae error"):
            fail(f"the page reported: {title}")
        if title.startswith(prefixes):
            return title
        time.sleep(0.5)
    fail(f"the page's title is still {driver.title()!r} after {seconds} s")


def expect_error(driver, needle, what, seconds=120):
    """Waits for the page's error title, which must contain `needle`; prints it."""
    deadline = time.time() + seconds
    while not (title := driver.title()).startswith("wgvae error") and time.time() < deadline:
        time.sleep(0.2)
    if needle not in title:
        fail(f"{what}: expected the page's error with {needle!r}; the title is {title!r}")
    print(f"{what}: {title}")


def cli_run(cli, out, *flags):
    """One epoch of the same run with the CLI: its metrics.csv row."""
    subprocess.run([cli, "train", "--epochs", str(EPOCHS), "--seed", str(SEED), "--out", out, *flags], check=True)
    with open(os.path.join(out, "metrics.csv")) as f:
        header, row = f.read().splitlines()[:2]
    return dict(zip(header.split(","), map(float, row.split(","))))


def compare(what, page_m, cli_m, tolerance):
    for key in LOSSES:
        # Each term is held to a share of its split's whole loss.
        diff, bound = abs(page_m[key] - cli_m[key]), tolerance(cli_m[key.split("_")[0] + "_loss"])
        print(f"{what}: {key:>10}: page {page_m[key]:.5f}  CLI {cli_m[key]:.5f}  difference {diff:.5f}")
        if diff > bound:
            fail(f"{what}: {key} differs by {diff:.5f} nats between the page and the CLI (at most {bound:.5f})")


def canvas_state(driver, css):
    return driver.script(f"arguments[0](document.querySelector('{css}').toDataURL())")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", required=True)
    parser.add_argument("--dist", required=True)
    parser.add_argument("--out", default="target/browser")
    args = parser.parse_args()
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        fail("needs Chromium and ChromeDriver: `sudo apt-get install -y chromium chromium-driver` (Debian/Ubuntu)")
    if not os.path.isfile(os.path.join(args.dist, "wgvae_web_bg.wasm")):
        fail(f"{args.dist} holds no wgvae_web_bg.wasm: build it with web/build.sh")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="wgvae-browser-")
    downloads = os.path.join(work, "downloads")
    os.makedirs(downloads)
    server = serve(args.dist)
    page = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    driver_port = free_port()
    chromedriver_proc = subprocess.Popen([chromedriver, f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
    quiet = ["--headless=new", "--no-sandbox", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
             "--window-size=1200,1400",
             f"--user-data-dir={os.path.join(work, 'profile')}"]
    driver = None
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{driver_port}/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)

        # Without WebGPU: the page says what is missing, before loading anything.
        driver = WebDriver(driver_port, quiet + ["--disable-webgpu", "--disable-gpu"], downloads)
        driver.go(page)
        expect_error(driver, "WebGPU", "without WebGPU")
        driver.quit()

        driver = WebDriver(driver_port, quiet + ["--enable-unsafe-webgpu"], downloads)

        # A model past the adapter's limits: the CLI's message, before anything is allocated.
        # (2.4 GB of activations against SwiftShader's 1 GiB binding.)
        driver.go(f"{page}?autostart=1&batch=9000&hidden=16384&flags=--mc-samples%204")
        expect_error(driver, "largest storage binding", "past the limits")
        driver.go(f"{page}?autostart=1&flags=--conditional")
        expect_error(driver, "unconditional", "conditional")
        opened = time.time()
        driver.go(f"{page}?autostart=1&epochs={EPOCHS}&seed={SEED}")
        title = wait_title(driver, ("wgvae done",), 1200)
        seconds = time.time() - opened
        result = driver.script("arguments[0]({history: wgvae.history, firstEpochMs: wgvae.firstEpochMs, "
                               "status: document.getElementById('status').textContent})")
        page_m = result["history"][-1]
        print(f"page: {title}; {result['status']}")
        print(f"page: first epoch done {result['firstEpochMs'] / 1000:.1f} s after the page opened; "
              f"{page_m['images_per_second']:.0f} images/s; whole run {seconds:.1f} s")
        with open(os.path.join(args.out, "page.png"), "wb") as f:
            png = driver.screenshot()
            f.write(png)
        width, height, pixels = decode_png(png)
        distinct = len(set(pixels))
        dark = sum(1 for p in pixels if sum(p[:3]) < 300) / len(pixels)
        print(f"screenshot {width}x{height}: {distinct} distinct colours, {dark:.1%} dark pixels "
              f"({os.path.join(args.out, 'page.png')})")
        if distinct < 50 or dark < 0.02:
            fail("the screenshot after training looks blank")

        cli_m = cli_run(args.cli, os.path.join(work, "cli"))
        compare("trained", page_m, cli_m, lambda v: TRAINED_RELATIVE_TOLERANCE * abs(v))

        # The explorer: moving a slider redraws the decoded image.
        before = canvas_state(driver, "#explorer-image")
        redraws = driver.script("""
            const done = arguments[0];
            const slider = document.querySelector('#sliders input');
            slider.value = 2.5;
            slider.dispatchEvent(new Event('input'));
            (wgvae.explorer.drawing ?? Promise.resolve()).then(() => done(wgvae.explorer.redraws));""")
        after = canvas_state(driver, "#explorer-image")
        if before == after or redraws < 2:
            fail(f"the explorer did not redraw (redraws {redraws})")
        print(f"explorer: redrew after a slider moved ({redraws} decodes)")

        # Download checkpoint.safetensors, as the button does, and load it in the CLI.
        driver.click("#download-checkpoint")
        file = os.path.join(downloads, "checkpoint.safetensors")
        deadline = time.time() + 60
        while not os.path.isfile(file) and time.time() < deadline:
            time.sleep(0.2)
        if not os.path.isfile(file):
            fail("the page's checkpoint did not download")
        time.sleep(1)
        samples = os.path.join(args.out, "from-page-samples.png")
        subprocess.run([args.cli, "sample", "--checkpoint", file, "--out", samples], check=True)
        print(f"CLI: loaded the page's {os.path.getsize(file)}-byte checkpoint and wrote {samples}")

        # Open the CLI's checkpoint in the page.
        driver.send_keys("#open", os.path.abspath(os.path.join(work, "cli", "checkpoint.safetensors")))
        wait_title(driver, ("wgvae opened",), 300)
        print("page: opened the CLI's checkpoint")

        # The weights held still: the page and the CLI see the same batches, draws and kernels.
        driver.go(f"{page}?autostart=1&epochs={EPOCHS}&seed={SEED}&lr={STILL_LR}")
        wait_title(driver, ("wgvae done",), 1200)
        still_page = driver.script("arguments[0](wgvae.history.at(-1))")
        still_cli = cli_run(args.cli, os.path.join(work, "still"), "--lr", STILL_LR)
        compare(f"--lr {STILL_LR}", still_page, still_cli, lambda v: STILL_TOLERANCE)

        # A file that is not a checkpoint: the loader's message, in the page.
        bad = os.path.join(work, "not-a-checkpoint.safetensors")
        with open(bad, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
        driver.send_keys("#open", bad)
        expect_error(driver, "not a valid safetensors file", "corrupt checkpoint")
    finally:
        if driver:
            driver.quit()
        chromedriver_proc.terminate()
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print("browser test passed")


if __name__ == "__main__":
    main()
