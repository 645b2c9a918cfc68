"""segment_offline throughput: a local run against --ray with 1 and 2 actors, from the repository root

    bash scripts/run.sh python bench/offline_throughput.py [--copies 8] [--rounds 2] [--device cpu]

Source: scikit-image's 5 sample photos (up to 512x512), given `--copies` times (40 frames by
default). Each configuration runs as its own segment_offline process, round-robin over the
rounds so that the machine's drift hits every configuration alike; frames/s is what the tool's
summary reports (the segmenting loop: decoding, inference, writing; not model loading or Ray
start-up), and `total s` is the whole command. Medians over the rounds. Ray actors use the local
run's torch thread count unless --ray-threads says otherwise (byte-identical results need it).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS: dict[str, list[str]] = {
    "local (1 process)": [],
    "local, OMP_NUM_THREADS=1": [],
    "--ray auto --ray-actors 1": ["--ray", "auto", "--ray-actors", "1"],
    "--ray auto --ray-actors 2": ["--ray", "auto", "--ray-actors", "2"],
    "--ray auto --ray-actors 1 --ray-threads 1": ["--ray", "auto", "--ray-actors", "1", "--ray-threads", "1"],
    "--ray auto --ray-actors 2 --ray-threads 1": ["--ray", "auto", "--ray-actors", "2", "--ray-threads", "1"],
}
RATE = re.compile(r"([0-9.]+) frames/s\)")


ENV: dict[str, dict[str, str]] = {"local, OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"}}


def one_run(args: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    command = [sys.executable, "-c", "import sys; from seg_perception.apps import run; sys.exit(run('segment_offline'))",
               *args, "--out", str(out)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env={**os.environ, **env})
    total = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[-6:])} failed:\n{result.stderr[-2000:]}")
    found = RATE.search(result.stdout)
    if found is None:
        raise RuntimeError(f"no rate in the summary:\n{result.stdout[-2000:]}")
    return float(found.group(1)), total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()
    sources = ["samples"] * options.copies
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    totals: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(options.rounds):
            for n, (name, extra) in enumerate(CONFIGS.items()):
                rate, total = one_run([*sources, "--device", options.device, *extra], Path(tmp) / f"{round_index}_{n}",
                                      ENV.get(name, {}))
                rates[name].append(rate)
                totals[name].append(total)
                print(f"round {round_index + 1}: {name}: {rate:.2f} frames/s, {total:.1f} s in all", flush=True)
    frames = 5 * options.copies
    print(f"\n{frames} frames (sample photos x {options.copies}), device {options.device}, medians of "
          f"{options.rounds} rounds\n")
    print("| configuration | frames/s | total s (with model load / Ray start) |")
    print("|---|---|---|")
    for name in CONFIGS:
        print(f"| `{name}` | {statistics.median(rates[name]):.2f} | {statistics.median(totals[name]):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
