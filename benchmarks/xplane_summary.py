"""Summarise JAX profiler traces (`*.xplane.pb` or `.xplane.pb.gz`, e.g. from
`benchmarks/gpu_flags.py`): per accelerator, the traced span, the time some kernel ran
(the union of kernel intervals over all streams), the kernel count and the kernels that
took the most time, so that a run on a lent GPU can be read back here, without one.

    python benchmarks/xplane_summary.py darts-v1.xplane.pb.gz gdas.xplane.pb.gz --steps 3

`--steps`: how many steps the trace holds (per-step figures divide by it).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib

from jax.profiler import ProfileData


def summary(path: pathlib.Path, steps: int, top: int) -> dict:
    """Span, busy time, kernel count and top kernels of each device plane in `path`."""
    raw = path.read_bytes()
    data = ProfileData.from_serialized_xspace(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    planes = {}
    for plane in data.planes:
        if not plane.name.startswith("/device:"):
            continue
        events = [(e.start_ns, e.duration_ns, e.name) for line in plane.lines for e in line.events]
        if not events:
            continue
        intervals = sorted((start, start + length) for start, length, _ in events)
        busy, (low, high) = 0, intervals[0]
        for start, end in intervals[1:]:
            if start > high:
                busy, low, high = busy + high - low, start, end
            else:
                high = max(high, end)
        busy += high - low
        span = intervals[-1][1] - intervals[0][0]
        by_name: collections.Counter = collections.Counter()
        count: collections.Counter = collections.Counter()
        for _, length, name in events:
            by_name[name[:60]] += length
            count[name[:60]] += 1
        planes[plane.name] = {
            "streams": sum(1 for line in plane.lines if any(True for _ in line.events)),
            "span_ms_per_step": round(span / 1e6 / steps, 2),
            "busy_ms_per_step": round(busy / 1e6 / steps, 2),
            "kernels_per_step": round(len(events) / steps),
            "top_kernels_ms_per_step": {
                name: [round(t / 1e6 / steps, 3), count[name] // steps]
                for name, t in by_name.most_common(top)
            },
        }
    return planes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="+", type=pathlib.Path)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--out", type=pathlib.Path, help="also write the summary here (JSON)")
    args = parser.parse_args()
    result = {str(path.name): summary(path, args.steps, args.top) for path in args.traces}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
