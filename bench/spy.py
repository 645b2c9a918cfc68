"""Where the running segmentation_node spends a frame: a sampling profile (py-spy) of the node
process while this process sends it frames one at a time over DDS, as in the benchmark.

    bash scripts/run.sh python bench/spy.py --size 1920x1080 --seconds 20 [--model M] [--py-spy PATH]

py-spy is not a dependency of the package (`pip install py-spy` into any environment, or pass
its path). It samples every thread of the node without slowing it down, including time in C
extensions (rclpy, OpenCV, ONNX Runtime, torch) attributed to the Python line that called them.
Prints, per thread, the share of samples under each function (inclusive) and where samples
end (self); writes the raw collapsed stacks to out/bench/spy_<size>.txt.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # see bench/run.py

import argparse  # noqa: E402
import collections  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from bench.measures import parse_size, percentiles, size_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def summarize(raw: str, top: int = 25) -> str:
    """Per-thread inclusive and self sample shares from py-spy's raw (collapsed) output."""
    inclusive: collections.Counter[tuple[str, str]] = collections.Counter()
    own: collections.Counter[tuple[str, str]] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread, calls = frames[0], [f.split(" (")[0] for f in frames[1:]]
        threads[thread] += int(count)
        for name in set(calls):
            inclusive[(thread, name)] += int(count)
        if calls:
            own[(thread, calls[-1])] += int(count)
    total = sum(threads.values()) or 1
    lines = [f"{total} samples; by thread: " + ", ".join(f"{t} {n / total:.0%}" for t, n in threads.most_common())]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- {title} (share of all samples) --")
        lines += [f"{n / total:6.1%}  {thread[:40]:40}  {name}" for (thread, name), n in counter.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", default="selfie")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench"))
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if shutil.which(args.py_spy) is None and not Path(args.py_spy).exists():
        raise SystemExit("py-spy not found: pip install py-spy (any environment) or pass --py-spy PATH")
    from bench.dds import Bench, _start_segmentation_node
    from bench.inprocess import photo_at, rgb8_message

    size = parse_size(args.size)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    raw_path = out / f"spy_{size_text(size)}.txt"
    msg = rgb8_message(photo_at(*size))
    bench = Bench()
    node = _start_segmentation_node(args.model, args.device, out / "logs", "spy")
    session = bench.session(f"{node.namespace}/image", f"{node.namespace}/segmentation/mask")
    try:
        session.wait_connected(node.proc)
        session.warm(msg, wanted=10)
        spy = subprocess.Popen([args.py_spy, "record", "--pid", str(node.proc.pid), "--duration",
                                str(int(args.seconds)), "--rate", str(args.rate), "--threads", "--nonblocking",
                                "--format", "raw", "--output", str(raw_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        latencies: list[float] = []
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end and spy.poll() is None:
            got, _ = session.round_trips(msg, 1)
            latencies += got
        _, err = spy.communicate(timeout=60)
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed: {err.strip()[-500:]}")
    finally:
        session.close()
        node.stop()
        bench.close()
    stats = percentiles(latencies)
    print(f"{len(latencies)} frames one at a time at {size_text(size)}: p50 {stats['p50']:.1f} / "
          f"p95 {stats['p95']:.1f} / p99 {stats['p99']:.1f} ms (while sampled)")
    print(summarize(raw_path.read_text()))
    print(f"raw stacks: {raw_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
