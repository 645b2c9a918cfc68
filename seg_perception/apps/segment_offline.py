"""segment_offline: segment recorded data with the node's engine, to pre-label data sets.

Sources (one or more): an image folder, one image, a video, 'samples' (photos bundled with
scikit-image), or a recorded bag: ROS 2 (a folder with metadata.yaml, or one .db3/.mcap file)
or ROS 1 (.bag), read with `rosbags`, so this runs wherever the pip dependencies do; no rclpy.

Per segmented frame, in --out, by --format:
  png (default)  <name>_mask.png (class ids, mono8 PNG, lossless; 255 = unlabeled),
                 <name>_confidence.png (winning class probability * 255, mono8 PNG),
                 with --overlay <name>_overlay.png, with --color <name>_color.png
  cvat           CVAT "Segmentation mask 1.1": labelmap.txt, SegmentationClass/<name>.png,
                 SegmentationObject/<name>.png (one instance per class present),
                 ImageSets/Segmentation/default.txt, the frames in JPEGImages/<name>.jpg and
                 cvat_labels.json (the CVAT project's labels, for its Raw label editor)
  coco           annotations/instances_default.json (COCO 1.0 as CVAT imports it: images,
                 categories, one RLE annotation per class per frame with area and bbox;
                 --coco-polygons: polygons instead of RLE) and the frames in images/<name>.jpg
  (coco also keeps coco_frames.jsonl: one JSON line per finished frame, its image entry and
                 annotations; annotations/instances_default.json is rebuilt from it at the end,
                 and --resume reads it)
Always: classes.json (model, class ids, names, colors, obstacle flags, options, format);
index.csv, one row per written frame, appended as frames finish so an interrupted run leaves a
valid index (and --resume skips what it lists). Columns: name, source (file or bag topic), stamp
(header stamp of a bag frame, sec.nanosec), width/height (of the written mask),
source_width/source_height (of the decoded frame), inference_ms (the engine's time for the
frame: preprocess, forward, postprocess, colorize; not decoding or writing), share_<class> per
class and share_unlabeled (each class's fraction of the mask's pixels), mean_confidence,
low_confidence_share (pixels below --review-threshold), origin (the source argument);
review.csv: the frames ranked worst first (most low-confidence pixels, then lowest mean
confidence), for annotators to fix first.
--bag-out FILE: a rosbag2 (mcap) of the source images with mask, confidence, color mask and
class map on <camera namespace>/segmentation/..., stamps and frame_id of the source frames;
frames from files are put on the recordings' clock, 0.1 s apart after the last bag's end.

Frame names: a file's stem; `<video stem>_<frame index>`; for bags
`<topic, '/' and other odd characters as '_'>_<header stamp in ns>` (the bag's receive
time where a driver leaves the header stamp zero). A repeated name gets `_1`, `_2`, ...

A frame that cannot be decoded (corrupt payload, unknown encoding, unreadable file, a video
frame the decoder had to conceal errors in, or that a cut-off video lists but does not hold) is
reported, counted and skipped; a source that cannot be read at all is an error, found before
anything is written; a source that breaks midway (a damaged bag) is reported by name, the
frames before it stay, and the run goes on with the next source (exit status 1). Without
--topic every Image/CompressedImage topic of a bag is segmented except depth streams
(16UC1/32FC1, compressedDepth), which are not pictures a segmentation model understands;
naming a topic with --topic segments it whatever it holds. Segmentation outputs
(<ns>/segmentation/mask, confidence, color_mask, overlay: what --bag-out and the node write) are
skipped the same way, so a bag written by --bag-out can be read again as it is.

An --out that already holds files of an earlier run is reported (frames not segmented this
time would keep their old files beside the new ones): --overwrite removes those files first
(only files this tool writes), --resume continues the earlier run. Settings that differ from
the run being resumed are refused before the model is loaded.

Progress: a line at once (what is loaded), then a bar with rate and ETA on a terminal, a line
every 10 s otherwise (stderr).
"""
from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from ..engine.geometry import parse_output_size
from ..offline.bagout import BagOutError, file_time_base_ns
from ..offline.formats import FORMATS, FormatError, previous_outputs, remove_previous_outputs
from ..offline.frames import BagSource, Source, SourceError, check_source, open_source
from ..offline.index import ResumeError, check_resume, classes_document, settings_document
from ..offline.progress import Progress, duration
from ..offline.ray_exec import RayError
from ..offline.review import REVIEW_FILE
from ..offline.runner import Executor, LocalExecutor, Outputs, RunStats, expected_total, run, source_frames
from ..offline.segment import FrameSegmenter
from ..engine.pipeline import SegmentationOptions, SegmentationPipeline
from ..model.base import RUNTIMES, DeviceError, ModelLoadError
from ..model.builtin import DEFAULT_MODEL
from ..model.loader import load_warm

PROG = "segment_offline"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _output_size(text: str) -> str | tuple[int, int]:
    try:
        return parse_output_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Segment image folders, images, videos or recorded ROS bags offline, with the same "
                    "engine as segmentation_node, and write pre-labels (png, CVAT or COCO), index.csv, "
                    "review.csv and optionally a segmented bag.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="image folder, image, video, 'samples', ROS 2 bag (folder with metadata.yaml, "
                             ".db3 or .mcap) or ROS 1 .bag; several are segmented in turn")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--format", dest="output_format", choices=FORMATS, default="png",
                        help="png masks (default), cvat (Segmentation mask 1.1) or coco (RLE JSON)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="builtin model name or a TorchScript/ONNX file with its description")
    parser.add_argument("--description", default=None,
                        help="model description YAML, when it does not lie beside a model file")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--runtime", default="auto", choices=RUNTIMES,
                        help="what runs the model: auto (by file type), torch, onnxruntime or openvino (CPU)")
    parser.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                        help="bag topic to segment (repeatable); default: every image topic except depth")
    parser.add_argument("--output-size", type=_output_size, default="input", metavar="input|network|WxH",
                        help="size of the written masks (default: the frame's)")
    parser.add_argument("--confidence-threshold", type=_fraction, default=0.0,
                        help="pixels whose winning probability is below this are 255 (unlabeled)")
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png (png format)")
    parser.add_argument("--color", action="store_true", help="also write <name>_color.png (png format)")
    parser.add_argument("--every", type=_positive_int, default=1, metavar="N",
                        help="segment every N-th frame (counted per bag topic, per other source)")
    parser.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                        help="stop when --out holds N segmented frames")
    parser.add_argument("--resume", action="store_true",
                        help="keep the frames index.csv in --out lists and segment only the others")
    parser.add_argument("--overwrite", action="store_true",
                        help="first remove the files an earlier run left in --out (only files this tool writes)")
    parser.add_argument("--bag-out", type=Path, default=None, metavar="FILE",
                        help="also write a rosbag2 (mcap) with the source images, masks, confidence, color "
                             "masks and class map (FILE is the bag folder; a resumed run adds FILE_2...)")
    parser.add_argument("--coco-polygons", action="store_true",
                        help="--format coco: polygons (outer contours) instead of RLE masks, for tools that "
                             "do not read RLE (Label Studio's converter)")
    parser.add_argument("--review-threshold", type=_fraction, default=0.7, metavar="P",
                        help="a pixel is low-confidence below this probability (review.csv; default 0.7)")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS|auto",
                        help="distribute frames over a Ray cluster (auto: RAY_ADDRESS or the `ray start` cluster here, "
                             "else a local Ray; local: always a new local Ray); with no value, put it after "
                             "the sources")
    parser.add_argument("--ray-actors", type=_positive_int, default=None, metavar="N",
                        help="Ray actors, one model each (default: the cluster's GPUs with --device cuda, "
                             "else its CPUs / --ray-cpus-per-actor)")
    parser.add_argument("--ray-cpus-per-actor", type=_positive_int, default=1, metavar="N",
                        help="CPUs Ray reserves per CPU actor (default 1)")
    parser.add_argument("--ray-threads", type=_positive_int, default=None, metavar="N",
                        help="torch threads per actor (default: what a local run here uses, so results match "
                             "it byte for byte)")
    parser.add_argument("--progress-interval", type=float, default=10.0, metavar="S",
                        help="seconds between progress lines when stderr is not a terminal")
    return parser


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return 1


def _log(text: str) -> None:
    print(f"[{PROG}] {text}", flush=True)


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # A batch scheduler stops a job with SIGTERM: finish like Ctrl-C, with every file closed.
    raise KeyboardInterrupt


def _summary(stats: RunStats, out: Path) -> str:
    skipped = f", {stats.bad} skipped (undecodable)" if stats.bad else ""
    resumed = f", {stats.resumed} already done (--resume)" if stats.resumed else ""
    per_frame = stats.wall_s * 1e3 / stats.segmented if stats.segmented else 0.0
    rate = stats.segmented / stats.wall_s if stats.wall_s > 0 else 0.0
    bag = f"; bag {stats.bag_path}" if stats.bag_path is not None else ""
    return (f"{'interrupted: ' if stats.interrupted else ''}{stats.segmented} frames segmented{skipped}{resumed} in "
            f"{stats.wall_s:.2f} s ({duration(stats.wall_s)}, {rate:.2f} frames/s); mean {stats.mean_ms:.1f} ms per "
            f"frame in the engine, {per_frame:.1f} ms with decoding and writing; outputs in {out}/, worst frames "
            f"first in {out / REVIEW_FILE}{bag}")


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` is sys.argv-like: argv[0] is the program name."""
    args_in = list(sys.argv if argv is None else argv)[1:]
    parser = build_parser()
    args = parser.parse_args(args_in)
    try:
        bags = [check_source(str(s)) for s in args.sources]
    except SourceError as exc:
        return _error(str(exc))
    if args.topic and not any(bags):
        parser.error("--topic applies to bags only")
    if args.output_format != "png" and (args.overlay or args.color):
        parser.error("--overlay and --color apply to --format png")
    if args.coco_polygons and args.output_format != "coco":
        parser.error("--coco-polygons applies to --format coco")
    if args.overwrite and args.resume:
        parser.error("--overwrite and --resume exclude each other")

    keep_frame = args.output_format in ("cvat", "coco") or args.bag_out is not None
    options = SegmentationOptions(output_size=args.output_size, confidence_threshold=args.confidence_threshold,
                                  want_color=args.color or args.bag_out is not None, want_overlay=args.overlay)
    out: Path = args.out
    try:
        if args.resume:
            check_resume(out, settings_document(args.model, options, args.output_format))
    except ResumeError as exc:
        return _error(str(exc))
    earlier = previous_outputs(out)
    if earlier and args.overwrite:
        _log(f"--overwrite: removed {remove_previous_outputs(out)} files of an earlier run from {out}/")
    elif earlier and not args.resume:
        _log(f"warning: {out}/ already holds {len(earlier)} files of an earlier run (e.g. {earlier[0].name}); "
             "frames not segmented now keep their old files beside the new ones: --overwrite removes them "
             "first, --resume continues that run")
    try:
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    except ValueError:  # not the main thread (called from a test or an embedding program)
        previous = None
    try:
        with ExitStack() as stack:
            sources: list[Source] = []
            for source in args.sources:
                opened = open_source(str(source), args.topic, _log)
                stack.enter_context(opened)
                if isinstance(opened, BagSource):
                    _log(opened.describe())
                sources.append(opened)
            executor: Executor
            try:
                _log(f"loading model '{args.model}' (device {args.device}{', on Ray' if args.ray else ''})...")
                if args.ray is None:
                    runtime = load_warm(args.model, args.device, 2, description=args.description,
                                        runtime=args.runtime)
                    pipeline = SegmentationPipeline(runtime)
                    executor = LocalExecutor(FrameSegmenter(pipeline, options, keep_frame, args.review_threshold))
                    class_map = pipeline.class_map
                    _log(f"model '{args.model}' ({class_map.model_name or runtime.spec.name}) on {runtime.device}; "
                         f"classes: {', '.join(class_map.names)}")
                else:
                    from ..offline.ray_exec import RayExecutor
                    ray_executor = RayExecutor(args.ray, args.ray_actors, args.model, args.device, args.description,
                                               options, keep_frame, args.review_threshold, args.ray_cpus_per_actor,
                                               args.ray_threads, _log, runtime=args.runtime)
                    executor = ray_executor
                    class_map = ray_executor.class_map
                    _log(f"model '{args.model}' ({ray_executor.model_name}); classes: {', '.join(class_map.names)}")
            except (ModelLoadError, DeviceError) as exc:
                # The loader's hints name the node's parameters; here they are this tool's flags.
                return _error(str(exc).replace("device:=", "--device "))
            stack.callback(executor.close)
            out.mkdir(parents=True, exist_ok=True)
            outputs = Outputs(out, class_map, args.output_format, args.resume, args.bag_out, args.confidence_threshold,
                              args.color, args.coco_polygons, file_time_base_ns(sources),
                              classes_document(class_map, args.model, options, args.output_format))
            stack.callback(outputs.close)
            done = len(outputs.index.rows)
            if done:
                _log(f"resuming: {done} frames in {out / 'index.csv'} are kept")
            progress = Progress(sys.stderr, expected_total(sources, args.every, args.limit), done,
                                args.progress_interval, f"[{PROG}] ")
            errors: list[str] = []
            stats = run(source_frames(sources, errors, progress.note), executor, outputs, progress, args.every,
                        args.limit, errors, PROG)
    except (SourceError, ResumeError, BagOutError, FormatError, RayError, OSError) as exc:
        return _error(str(exc))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

    _log(_summary(stats, out))
    if stats.errors:
        return _error("; ".join(stats.errors))
    if stats.interrupted:
        return 130
    if stats.segmented + stats.resumed == 0:
        return _error("no frame could be segmented" if stats.bad else "the source holds no frames to segment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
