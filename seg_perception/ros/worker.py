"""The engine thread: takes the newest frame of every camera, runs them through the
FrameProcessor as one batch, pairs each with its depth, and publishes.

The executor thread only drops serialized frames into `slots` (latest wins per camera); this
thread reads the frames it actually takes in place (wire.cdr), so frames that latest-wins drops
cost nothing more. Every model call (load, forward, release) happens on this one thread: CPU
torch's OpenMP pool belongs to the thread that first used it, and a second thread's pool competes
with the first one's spinning workers (measured: 10 ms forward -> 20 ms).

Nothing the executor thread does waits on this thread for long: a remote model call may hang (a
Triton server that accepts and never answers holds a call for all of `triton_timeout`), and the
executor also serves /diagnostics, the bond heartbeat and the lifecycle services. So with a remote
model, stop, release and shutdown wait at most `STOP_WAIT_S` for the engine; past that the work is
left queued on it (it runs once the call returns, and publishes nothing after stop), and the thread
is a daemon, so a process exiting never waits for a server either. A local forward ends by itself
in bounded time and is waited for: leaving torch's threads running at exit aborts the process.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from rclpy.lifecycle import LifecycleNode

from ..engine.frame import DepthFrame, DepthStatus, FrameInput, FrameOutputs, FrameProcessor
from ..live import stats
from ..live.latest import LatestPerKey
from ..model.base import runtime_health
from ..wire import cdr
from ..wire.images import ImageFormatError
from ..web.feed import OverlayFeed
from ..wire.stamps import stamp_to_ns
from ..wire.text import wire_text
from .cameras import Camera
from .parameters import LiveOptions
from .tf import CameraPoses

T = TypeVar("T")
CALIBRATION_WAIT_S = 0.05
"""How long a frame waits for its own camera_info (published right after the image)."""
STOP_WAIT_S = 0.8
"""The longest the executor thread waits for the engine when stopping, releasing or exiting."""


class Interrupted(RuntimeError):
    """A wait for the engine thread given up because the process is ending."""


class EngineThread:
    """One daemon thread running submitted calls in order: every model call happens on it.

    (A ThreadPoolExecutor's thread is joined at interpreter exit, so a hung call would hold the
    process for as long as it hangs.)"""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((lambda: fn(*args, **kwargs), future))
        return future

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            work, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self, wait_s: float) -> bool:
        """Ask the thread to end after its queued work; True if it ended within `wait_s`."""
        self._queue.put(None)
        self._thread.join(wait_s)
        return not self._thread.is_alive()
Batch = list[tuple[Camera, Any, dict[str, float]]]
"""A frame per camera: (camera, wire.cdr image message, {stage: ms} so far)."""


class EngineWorker:
    def __init__(self, node: LifecycleNode, node_stats: stats.NodeStats,
                 report: Callable[[str, str], None]) -> None:
        self._node = node
        self._stats = node_stats
        self._report = report
        self.slots: LatestPerKey[str, tuple[bytes, float]] = LatestPerKey()
        """per camera: (serialized frame, monotonic receipt time)"""
        self._engine = EngineThread("segmentation_engine")
        self._loop: Future[None] | None = None
        self.processor: FrameProcessor | None = None
        self.cameras: dict[str, Camera] = {}
        self.options: LiveOptions | None = None
        self.web_feed: OverlayFeed | None = None
        """The live view's overlays, while it serves (web_port)."""
        self.compressed = False
        self.last_error = ""
        self.poses = CameraPoses(node)
        self.interrupted = threading.Event()
        """Set by the process's signal handler: stop waiting for the engine thread."""
        self.stuck_since: float | None = None
        """Set while a stop gave up waiting for a model call; cleared when the engine is back."""

    def call(self, fn: Callable[..., T], *args: Any, remote: bool = False, **kwargs: Any) -> T:
        """Run `fn` on the engine thread and wait for it (the model load at configure). A `remote`
        call (it may wait on a server) is given up when `interrupted` is set meanwhile (a signal:
        the process is ending): Interrupted is raised and the call left to the daemon thread."""
        future = self._engine.submit(fn, *args, **kwargs)
        while True:
            try:
                result = future.result(0.1 if remote else None)
                break
            except FutureTimeout:
                if self.interrupted.is_set():
                    self.stuck_since = time.monotonic()
                    raise Interrupted("interrupted (signal) while the model server was being reached") from None
        self.stuck_since = None
        return result

    def call_bounded(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run `fn` on the engine thread; with a remote model wait at most STOP_WAIT_S (not at all
        while the engine is known to be stuck in a call): True if it ran by then, else it stays
        queued."""
        future = self._engine.submit(fn, *args)
        return self._wait(future, "releasing the model")

    @property
    def _remote(self) -> bool:
        """The model is a server's (its calls may hang); local forwards are always waited for."""
        processor = self.processor
        return processor is not None and runtime_health(processor.pipeline.runtime) is not None

    def _wait(self, future: Future[Any], what: str) -> bool:
        if self.stuck_since is not None and not future.done():
            return False
        try:
            future.result(STOP_WAIT_S if self._remote else None)
        except FutureTimeout:
            if self.stuck_since is None:
                self.stuck_since = time.monotonic()
                self._node.get_logger().warning(
                    f"{what}: the engine thread is still in a model call after {STOP_WAIT_S} s (a server not "
                    "answering?); not waiting for it: the call ends at its timeout and nothing is published after")
            return False
        except Exception as exc:  # noqa: BLE001 - a failing release must not fail the transition
            self._report(f"release:{type(exc).__name__}", f"{what} failed: {wire_text(str(exc), 200)}")
        return True

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self, compressed: bool) -> None:
        self.compressed = compressed
        self.slots.reopen()
        if self.processor is not None:  # the loop is stopped: no frame is using the history
            self.processor.pipeline.smoother.reset()  # frames from before a deactivate are stale
        self._loop = self._engine.submit(self._run)

    def stop(self) -> None:
        """Stop taking frames; waits for the loop's current frame at most STOP_WAIT_S."""
        self.slots.close()
        if self._loop is not None:
            self._wait(self._loop, "stopping")
            self._loop = None

    def shutdown(self) -> None:
        self.stop()
        # Stuck in a remote call: the daemon thread is left to it. Else its queue ends now.
        self._engine.shutdown(0.0 if self.stuck_since is not None else 60.0)

    def _run(self) -> None:
        self.stuck_since = None  # reached the queue's head: whatever held the engine has returned
        read = cdr.read_compressed_image if self.compressed else cdr.read_image
        while not self.slots.closed:
            batch: Batch = []
            for name, (serialized, received) in self.slots.take_all().items():
                camera = self.cameras.get(name)
                if camera is None:
                    continue
                start = time.monotonic()
                try:
                    msg = read(serialized)
                except ImageFormatError as exc:  # not even a well-formed message
                    self._rejected(camera, exc.kind, str(exc))
                    continue
                except Exception as exc:  # a bad frame must never kill the worker
                    self._failed([camera], exc)
                    continue
                batch.append((camera, msg, {"wait": (start - received) * 1e3,
                                            "read": (time.monotonic() - start) * 1e3}))
            if not batch:
                continue
            done: list[Camera] = []
            try:
                self._process(batch, done)
            except Exception as exc:  # a bad frame must never kill the worker
                self._failed([camera for camera, _, _ in batch if camera not in done], exc)

    def _failed(self, cameras: list[Camera], exc: Exception) -> None:
        for camera in cameras:
            self._stats.frame_failed()
            camera.counters.errors += 1
        self.last_error = f"{type(exc).__name__}: {wire_text(str(exc), 200)}"
        for camera in cameras:
            camera.counters.last_problem = self.last_error
        self._report(f"failed:{type(exc).__name__}", f"segmentation failed: {self.last_error}")

    def _rejected(self, camera: Camera, kind: str, text: str) -> None:
        self._stats.frame_rejected(f"{kind}: {text}")
        camera.counters.rejected += 1
        camera.counters.last_problem = f"{kind}: {wire_text(text, 200)}"
        self._report(f"image:{kind}", f"rejected frame on {self._resolve(camera.image_topic)}: {text}")

    def _resolve(self, topic: str) -> str:
        return self._node.resolve_topic_name(topic)

    def _process(self, batch: Batch, done: list[Camera]) -> None:
        """Each frame's outputs are published before the next one's are made (the pipeline
        reuses its full-size buffers)."""
        processor, opts = self.processor, self.options
        if processor is None or opts is None:
            return
        inputs, overlays = [], []
        web = self.web_feed
        for camera, msg, _ in batch:
            assert camera.outputs is not None  # made at configure, with the camera
            request = camera.outputs.narrow(opts.request, opts.use_depth)
            claimed = web is not None and web.claim(camera.name)  # only while a browser watches, at its rate
            overlays.append((request.overlay, claimed))
            if claimed:
                request = dataclasses.replace(request, overlay=True)
            info = camera.camera_info.for_frame(stamp_to_ns(msg.header.stamp), opts.camera_info_tolerance_ns,
                                                CALIBRATION_WAIT_S)
            inputs.append(FrameInput(msg, request, info, self._resolve(camera.topic("camera_info")), camera.name))
        for (camera, msg, stages), frame, (topic_overlay, web_overlay), out in zip(
                batch, inputs, overlays, processor.process_batch(inputs)):
            if frame.request.wants_depth:
                processor.add_depth_outputs(out, frame.request,
                                            self._paired_depth(camera, stamp_to_ns(msg.header.stamp), opts))
            if frame.request.ground and out.segmentation is not None:
                pose, why = self.poses.lookup(opts.camera_pose, opts.base_frame, str(msg.header.frame_id),
                                              msg.header.stamp)
                processor.add_ground(out, frame.request, pose, opts.base_frame, why)
            self._publish(camera, msg, out, stages, topic_overlay, web_overlay)
            done.append(camera)

    def _paired_depth(self, camera: Camera, stamp_ns: int, opts: LiveOptions) -> DepthFrame | None:
        """The depth frame with this stamp, waited for up to `depth_wait` after inference."""
        depth = camera.depth.wait_match(stamp_ns, opts.depth_sync_tolerance_ns, opts.depth_wait)
        if depth is None:
            return None
        depth_ns = stamp_to_ns(depth.header.stamp)
        tolerance = opts.camera_info_tolerance_ns
        if camera.depth_info.newest_stamp() is not None:
            info = camera.depth_info.for_frame(depth_ns, tolerance, CALIBRATION_WAIT_S)
            return DepthFrame(depth, info, self._resolve(camera.topic("depth/camera_info")))
        info = camera.camera_info.for_frame(depth_ns, tolerance, 0.0)
        return DepthFrame(depth, info, self._resolve(camera.topic("camera_info")))

    def _publish(self, camera: Camera, msg: Any, out: FrameOutputs, stages: dict[str, float],
                 topic_overlay: bool = True, web_overlay: bool = False) -> None:
        outputs = camera.outputs
        assert outputs is not None
        if self.slots.closed:  # stopped while this frame was in the model: its outputs may be gone
            return
        status = out.status
        if status.image_error:
            self._rejected(camera, status.image_error_kind, status.image_error)
            return
        self._count_camera_info(camera, out)
        start = time.perf_counter()
        outputs.publish_frame(msg.header, out, overlay=topic_overlay)
        stages.update(out.timings_ms, publish=(time.perf_counter() - start) * 1e3)
        web, result = self.web_feed, out.segmentation
        if web_overlay and web is not None and result is not None and result.overlay is not None:
            start = time.perf_counter()
            web.offer(camera.name, result.overlay, stamp_to_ns(msg.header.stamp))
            stages["web"] = (time.perf_counter() - start) * 1e3
        for not_a_stage in ("total", "batch"):
            stages.pop(not_a_stage, None)
        camera.counters.frames_out += 1
        camera.counters.last_output = time.monotonic()
        self._count_depth(camera, out)
        if status.ground_error:
            detail = f"{self._resolve(camera.image_topic)}: {wire_text(status.ground_error, 300)}"
            self._stats.ground_result(detail)
            self._report(f"ground:{camera.name}", f"no ground projection for a frame on {detail}")
        elif out.ground is not None:
            self._stats.ground_result(None)
        stamp_ns = stamp_to_ns(msg.header.stamp)
        latency = (self._node.get_clock().now().nanoseconds - stamp_ns) / 1e6 if stamp_ns > 0 else None
        self._stats.frame_done(out.timings_ms["inference"], out.timings_ms["total"], latency, stages)

    def _count_camera_info(self, camera: Camera, out: FrameOutputs) -> None:
        """An unusable color camera_info is not republished: counted, logged per topic, and WARN in
        diagnostics until a good one arrives."""
        topic = self._resolve(camera.topic("camera_info"))
        if out.status.camera_info_error:
            self._stats.camera_info_invalid(topic, out.status.camera_info_error)
            self._report(f"camera_info:{topic}", f"not republishing the calibration: {out.status.camera_info_error}")
        elif out.camera_info is not None:
            self._stats.camera_info_valid(topic)

    def _count_depth(self, camera: Camera, out: FrameOutputs) -> None:
        status = out.status
        if status.depth is DepthStatus.OK:
            self._stats.depth_result(None)
        elif status.depth.counter is not None:
            topic = self._resolve(camera.topic(camera.depth_relative))
            detail = f"{status.depth.value} ({topic})"
            if status.depth is DepthStatus.UNPAIRED and camera.depth.newest_stamp() is None:
                detail = f"no depth image has arrived on {topic} (no depth camera? use_depth:=false turns clouds off)"
            detail += f": {status.depth_error}" if status.depth_error else ""
            self._stats.depth_result(status.depth.counter, detail)
            if status.depth is not DepthStatus.UNPAIRED:  # expected now and then: counted, not logged
                self._report(f"depth:{status.depth.name}", f"no cloud: {detail}")
