"""Mask flicker with and without `temporal_smoothing`, on jittered image sequences.

    bash scripts/run.sh python bench/flicker.py [--model selfie] [--frames 30] [--alphas 0 0.5 0.8]

A still scene seen by a shaking, noisy camera: each frame of a photo is shifted by a random
sub-pixel offset (up to --shift px), its brightness scaled by up to --gain and Gaussian noise
(--noise gray levels) added; seeded, so every run sees the same frames. Each mask is warped back
by the frame's own offset (nearest neighbour), so a pixel that changes class between consecutive
frames is the segmentation changing its mind, not the scene moving. Pixels within --margin of
the border are left out (the shift brings edge pixels in and out of view).

Per smoothing weight a it prints: class flips per pixel per frame (the flicker), its reduction
against a = 0, and the share of pixels that agree with the mask of the clean, unjittered photo
(what smoothing must not lose). The engine is the node's own (SegmentationPipeline), one stream
per photo and weight.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # see bench/run.py

import argparse  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline  # noqa: E402
from seg_perception.model.loader import load_model  # noqa: E402
from seg_perception.offline.sources import sample_photo  # noqa: E402

PHOTOS = ("astronaut", "camera", "coffee")


def jittered(rgb: np.ndarray, rng: np.random.Generator, shift: float, gain: float,
             noise: float) -> tuple[np.ndarray, np.ndarray]:
    """One shaken, noisy frame of `rgb` and the 2x3 affine that moved it."""
    dx, dy = rng.uniform(-shift, shift, 2)
    move = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    frame = cv2.warpAffine(rgb, move, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    scaled = frame.astype(np.float32) * np.float32(rng.uniform(1.0 - gain, 1.0 + gain))
    scaled += np.asarray(rng.normal(0.0, noise, frame.shape), np.float32)
    return np.clip(scaled, 0, 255).astype(np.uint8), move


def back(labels: np.ndarray, move: np.ndarray) -> np.ndarray:
    """The mask in the clean photo's pixels: the frame's shift undone, nearest neighbour."""
    return cv2.warpAffine(labels, move, (labels.shape[1], labels.shape[0]),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def measure(pipeline: SegmentationPipeline, rgb: np.ndarray, alpha: float, stream: str, frames: int,
            args: argparse.Namespace) -> tuple[int, int, int, int, float]:
    """(flips, pixel-frame pairs compared, pixels agreeing with the clean mask, pixels compared,
    ms per frame) over one jittered sequence."""
    rng = np.random.default_rng(args.seed)  # the same frames for every alpha
    clean = pipeline(rgb, SegmentationOptions(want_confidence=False)).labels.copy()
    inner = (slice(args.margin, -args.margin), slice(args.margin, -args.margin))
    options = SegmentationOptions(want_confidence=False, temporal_smoothing=alpha, stream=stream)
    previous = None
    flips = pairs = agree = seen = 0
    t0 = time.perf_counter()
    for _ in range(frames):
        frame, move = jittered(rgb, rng, args.shift, args.gain, args.noise)
        labels = back(pipeline(frame, options).labels, move)[inner]
        if previous is not None:
            flips += int(np.count_nonzero(labels != previous))
            pairs += labels.size
        agree += int(np.count_nonzero(labels == clean[inner]))
        seen += labels.size
        previous = labels
    return flips, pairs, agree, seen, (time.perf_counter() - t0) * 1e3 / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="selfie")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 0.8])
    parser.add_argument("--shift", type=float, default=1.5, help="max shift per frame (px)")
    parser.add_argument("--gain", type=float, default=0.05, help="max brightness change (fraction)")
    parser.add_argument("--noise", type=float, default=6.0, help="Gaussian noise sigma (gray levels)")
    parser.add_argument("--margin", type=int, default=4)
    parser.add_argument("--size", default="320x240", help="frame size WxH")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--threads", type=int, default=1, help="model threads on the CPU (0 = one per core)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    pipeline = SegmentationPipeline(load_model(args.model, "cpu", cpu_threads=args.threads))
    photos = {name: cv2.resize(sample_photo(name), (width, height), interpolation=cv2.INTER_AREA) for name in PHOTOS}
    print(f"model {args.model}, {len(photos)} photos x {args.frames} frames at {width}x{height}, shift <= "
          f"{args.shift} px, gain <= {args.gain:.0%}, noise sigma {args.noise}, seed {args.seed}\n")
    print("| temporal_smoothing | flips per pixel per frame | vs. off | agrees with the clean mask | ms per frame |")
    print("|---|---|---|---|---|")
    baseline = None
    for alpha in args.alphas:
        totals = np.zeros(4, np.int64)
        ms = []
        for name, rgb in photos.items():
            *counts, per_frame = measure(pipeline, rgb, alpha, f"{name}@{alpha}", args.frames, args)
            totals += counts
            ms.append(per_frame)
        rate = totals[0] / totals[1]
        baseline = rate if baseline is None else baseline
        change = "-" if alpha == args.alphas[0] else f"{(rate / baseline - 1):+.0%}"
        print(f"| {alpha:g} | {rate:.5f} | {change} | {totals[2] / totals[3]:.2%} | {np.median(ms):.1f} |")
    pipeline.close()


if __name__ == "__main__":
    main()
