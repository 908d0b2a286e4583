"""Host data pipeline throughput: batches per second that `jnas.data.stream` delivers when
each batch is decoded on the host (PNG decode + LANCZOS resize of Omniglot images, as a
TFDS or image-folder source does), with 1, 2 and 4 decoding threads.

    python benchmarks/stream_throughput.py --batch-size 256 --batches 30 --out benchmarks/results

Reads the Omniglot zip from `../shared/omniglot` (`--omniglot`); writes
`stream_throughput.json`. No model runs: this is the rate a GPU step could be fed at.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
import zipfile

import jax
import numpy as np
from _child import cpu_name

from jnas.data import omniglot_image, stream


class PNGSource:
    """Encoded images kept in memory, decoded per batch (a HostSource)."""

    def __init__(self, blobs: list[bytes], size: int) -> None:
        self.blobs, self.size = blobs, size

    def __len__(self) -> int:
        return len(self.blobs)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([omniglot_image(self.blobs[int(i)], self.size) for i in indices])
        return x, np.asarray(indices % 5, np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--omniglot", default="../shared/omniglot")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--size", type=int, default=84, help="decoded image side (default 84)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    path = pathlib.Path(args.omniglot) / "images_background_small1.zip"
    with zipfile.ZipFile(path) as z:
        blobs = [z.read(n) for n in z.namelist() if n.endswith(".png")]
    source = PNGSource(blobs, args.size)
    n = args.batch_size * args.batches
    rows = []
    for workers in (1, 2, 4):
        key = jax.random.key(0)
        data = PNGSource(blobs * (n // len(blobs) + 1), args.size)
        start = time.perf_counter()
        count = 0
        for xb, _ in stream(data, key, args.batch_size, workers=workers):
            jax.block_until_ready(xb)
            count += 1
            if count == args.batches:
                break
        seconds = time.perf_counter() - start
        rows.append({"workers": workers, "batches_per_s": count / seconds, "seconds": seconds})
        print(f"{workers} worker(s): {count / seconds:.2f} batches/s of {args.batch_size}")
    for r in rows:
        r["speedup"] = r["batches_per_s"] / rows[0]["batches_per_s"]
    result = {
        "batch_size": args.batch_size,
        "image_side": args.size,
        "images_in_zip": len(source),
        "machine": cpu_name(),
        "runs": rows,
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stream_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out / 'stream_throughput.json'}")


if __name__ == "__main__":
    main()
