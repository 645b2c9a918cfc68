"""The segment_offline job: frames of every source -> an executor (this process or a Ray
cluster) -> outputs written in source order, with --every, --limit, --resume and progress.

Names are given before decoding (a file's stem, `<video stem>_<index>`, `<topic>_<stamp ns>`,
a repeat gets `_1`, `_2`, ...), so a resumed run gives every frame the name it had and skips
those index.csv holds without decoding them. A source that fails midway is reported, naming it,
and the run goes on with the next source; what was written stays.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..model.labels import ClassMap
from .bagout import SegmentedBagWriter, free_bag_path
from .formats import make_writer
from .frames import FrameRef, FrameSource, SourceError
from .index import CLASSES_FILE, IndexFile, check_classes, safe_frame_name
from .progress import Progress
from .review import write_review
from .segment import BadFrame, FrameSegmenter, Outcome


class Executor(Protocol):
    def map(self, refs: Iterator[FrameRef]) -> Iterator[tuple[FrameRef, Outcome]]:
        """(ref, outcome) for every ref, in the order of `refs`."""
        ...

    def close(self) -> None:
        ...


class LocalExecutor:
    def __init__(self, segmenter: FrameSegmenter) -> None:
        self.segmenter = segmenter

    def map(self, refs: Iterator[FrameRef]) -> Iterator[tuple[FrameRef, Outcome]]:
        for ref in refs:
            yield ref, self.segmenter(ref.payload)

    def close(self) -> None:
        self.segmenter.pipeline.close()


@dataclass
class RunStats:
    segmented: int = 0
    """Frames written by this run."""
    resumed: int = 0
    """Frames index.csv already held (--resume), skipped without decoding."""
    bad: int = 0
    engine_ms: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)
    """Sources that stopped early (a damaged bag...), each naming the source."""
    bag_path: Path | None = None

    @property
    def error(self) -> str:
        return "; ".join(self.errors)

    @property
    def mean_ms(self) -> float:
        return self.engine_ms / self.segmented if self.segmented else 0.0


def unique_name(name: str, used: set[str]) -> str:
    candidate, n = name, 0
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate


def source_frames(sources: Sequence[FrameSource], errors: list[str], note: Callable[[str], None]) -> Iterator[FrameRef]:
    """The frames of every (entered) source in turn; a source failing midway is recorded, not fatal."""
    for source in sources:
        try:
            yield from source.frames()
        except SourceError as exc:
            errors.append(str(exc))
            note(f"error: {exc}; frames before this point were written; going on with the next source")


def expected_total(sources: Sequence[FrameSource], every: int, limit: int | None) -> int | None:
    total = 0
    for source in sources:
        counts = source.expected()
        if counts is None:
            return limit
        total += sum(math.ceil(n / every) for n in counts.values())
    return min(total, limit) if limit is not None else total


@dataclass
class Plan:
    """Which frames to segment: --every per stream, names, and what --resume skips."""

    every: int = 1
    done: frozenset[str] = frozenset()
    skipped_done: int = 0
    _seen: Counter[str] = field(default_factory=Counter)
    _used: set[str] = field(default_factory=set)
    _ordinal: int = 0

    def __call__(self, refs: Iterator[FrameRef]) -> Iterator[FrameRef]:
        for ref in refs:
            position = self._seen[ref.stream]
            self._seen[ref.stream] += 1
            if position % self.every:
                continue
            ref.name = unique_name(safe_frame_name(ref.name), self._used)
            ref.ordinal = self._ordinal
            self._ordinal += 1
            if ref.name in self.done:
                self.skipped_done += 1
                continue
            yield ref


class Outputs:
    """Everything written per frame: the format's files, --bag-out, then the index row."""

    def __init__(self, out: Path, class_map: ClassMap, output_format: str, resume: bool,
                 bag_out: Path | None = None, label_threshold: float = 0.0, color_files: bool = False,
                 coco_polygons: bool = False, bag_time_base_ns: int = 0,
                 classes: dict[str, Any] | None = None) -> None:
        """Checks what a resume needs now (classes.json's settings, every index.csv row); writes
        nothing until the first frame is segmented, so a source that fails at once (a truncated
        video) leaves no classes.json, index.csv or review.csv behind. `bag_time_base_ns`: where
        --bag-out puts frames from files on its clock (bagout.file_time_base_ns of the run's sources)."""
        self.out = out
        self._classes = classes
        if classes is not None:
            check_classes(out, classes, resume)
        self.index = IndexFile(out, class_map, resume)
        self.writer = make_writer(output_format, out, class_map, color_files, coco_polygons)
        self._bag_args = (bag_out, class_map, label_threshold, bag_time_base_ns)
        self.bag: SegmentedBagWriter | None = None
        self._started = False

    @property
    def bag_path(self) -> Path | None:
        return self.bag.path if self.bag is not None else None

    def _start(self) -> None:
        self._started = True
        if self._classes is not None:
            (self.out / CLASSES_FILE).write_text(json.dumps(self._classes, indent=2) + "\n")
        self.writer.start(self.index.names)
        bag_out, class_map, label_threshold, time_base_ns = self._bag_args
        self.bag = (SegmentedBagWriter(free_bag_path(bag_out), class_map, label_threshold, time_base_ns)
                    if bag_out else None)

    def write(self, ref: FrameRef, outcome: Outcome) -> None:
        assert not isinstance(outcome, BadFrame)
        if not self._started:
            self._start()
        self.writer.write(ref.name, outcome)
        if self.bag is not None:
            self.bag.write(ref, outcome, ref.ordinal)
        self.index.add(ref.name, ref, outcome)

    def close(self) -> None:
        try:
            if not self._started and self.index.rows:
                self._start()  # resumed with nothing new: the lists are rewritten as they were
            if self._started:
                self.writer.finish(self.index.names)
                write_review(self.out, self.index.rows)
        finally:
            if self.bag is not None:
                self.bag.close()
            self.index.close()


def run(refs: Iterator[FrameRef], executor: Executor, outputs: Outputs, progress: Progress, every: int = 1,
        limit: int | None = None, errors: list[str] | None = None, prog: str = "segment_offline") -> RunStats:
    """Segment the planned frames of `refs` and write them in order. `errors` is the list
    source_frames records failing sources in (shared so the summary sees them)."""
    stats = RunStats(errors=errors if errors is not None else [])
    plan = Plan(every, frozenset(outputs.index.names))
    start = time.perf_counter()
    try:
        if limit is None or len(outputs.index.rows) < limit:
            for ref, outcome in executor.map(plan(refs)):
                if isinstance(outcome, BadFrame):
                    stats.bad += 1
                    progress.note(f"[{prog}] skipped {ref.name} ({ref.source}): {outcome.problem}")
                    progress.update(0, bad=1)
                    continue
                outputs.write(ref, outcome)
                stats.segmented += 1
                stats.engine_ms += outcome.inference_ms
                progress.update(1)
                if limit is not None and len(outputs.index.rows) >= limit:
                    break
    except KeyboardInterrupt:
        stats.interrupted = True
    except SourceError as exc:  # a bare iterator of refs (no source_frames around it)
        stats.errors.append(str(exc))
    finally:
        progress.close()
        stats.bag_path = outputs.bag_path
        stats.resumed = plan.skipped_done
        stats.wall_s = time.perf_counter() - start
    return stats
