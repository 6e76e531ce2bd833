"""Build the embedded sample: a stratified Fashion-MNIST subset shipped inside the package.

Writes src/cnnlab/data/_sample/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz: 3,000 training and
1,000 test images (300 and 100 per class), chosen deterministically (seeded permutation per class,
then kept in their original order), as IDX files gzip-compressed with a fixed mtime so that the
output is byte-for-byte reproducible.

Usage:
    CNNLAB_DATA_DIR=../shared/data python scripts/make_sample.py
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cnnlab._io import write_bytes  # noqa: E402
from cnnlab.data.idx import STANDARD_STEMS, find_idx_set, read_idx  # noqa: E402

OUT = ROOT / "src" / "cnnlab" / "data" / "_sample"


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (magic 0x0803 / 0x0801, big-endian dims)."""
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as fh:
        fh.write(data)
    return buf.getvalue()


def pick(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA_DIR"), help="holds fashion-mnist/")
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set CNNLAB_DATA_DIR")
    files = find_idx_set([Path(args.data_dir) / "fashion-mnist", Path(args.data_dir)], STANDARD_STEMS)
    if files is None:
        parser.error(f"no Fashion-MNIST IDX files under {args.data_dir}")
    total = 0
    for split, n in (("train", args.train), ("test", args.test)):
        x, y = read_idx(files[f"{split}_images"]), read_idx(files[f"{split}_labels"])
        keep = pick(y, n // 10, args.seed)
        prefix = "train" if split == "train" else "t10k"
        for kind, arr in (("images-idx3", x[keep]), ("labels-idx1", y[keep])):
            dest = write_bytes(OUT / f"{prefix}-{kind}-ubyte.gz", gz(idx_bytes(arr)))
            total += dest.stat().st_size
            print(f"wrote {dest.relative_to(ROOT)} {arr.shape} {dest.stat().st_size:,} bytes")
    print(f"total {total:,} bytes")
    return 0 if total <= 3_000_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
