"""segmentation_node: wiring only. Parameters, QoS, topics, threads; the work is core.FrameProcessor.

Lifecycle (a managed node; `autostart` runs configure + activate at start): configure re-reads
the configure-time parameters, loads and warms up the model and publishes the class map
(transient-local); activate subscribes and starts the worker; deactivate stops both and
releases cached GPU memory; cleanup unloads the model, after which new configure-time
parameters (another model, device, topics) may be set and configured.

Threads: the executor thread only drops the newest serialized frame into its camera's one-slot
buffer (latest wins per camera) and files depth frames by stamp; the engine thread takes the
newest frame of every camera that has one, reads them, runs them through the FrameProcessor as
one batch and publishes. Every torch call happens on that one thread.

Cameras (`cameras`): each name C gets C/image ... C/segmentation/...; '' keeps the plain names.

Wire format: every camera message is taken serialized (raw subscriptions) and read in place
with core.cdr, whose uint8 fields are numpy views of the received bytes; every per-frame output
is published as CDR bytes. No rclpy message object carries pixels through this node (building
one for a 1080p frame costs more than the model).
"""
from __future__ import annotations

import gc
import signal
import sys
import time
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from . import diagnostics, parameters, qos
from .bond import LifecycleBond
from ..core import cdr, params, stats
from ..core.calibration import CalibrationError, intrinsics_from_camera_info
from ..core.conversions import ImageFormatError
from ..core.frame import DepthFrame, DepthStatus, FrameInput, FrameOutputs, FrameProcessor
from ..core.latest import LatestPerKey
from ..core.pairing import stamp_to_ns
from ..core.runtimes.base import DeviceError, ModelLoadError, describe_device, runtime_health
from ..core.runtimes.triton import TritonOptions
from ..core.wire_text import wire_text
from .cameras import Camera
from .outputs import Outputs

THROTTLE_S = 5.0


class SegmentationNode(LifecycleNode):
    def __init__(self, node_name: str = "segmentation_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        parameters.declare_all(self)
        self.stats = stats.NodeStats()
        self._slots: LatestPerKey[str, tuple[bytes, float]] = LatestPerKey()
        """per camera: (serialized frame, monotonic receipt time)"""
        self._cameras: dict[str, Camera] = {}
        self._processor: FrameProcessor | None = None
        self._device_text = "not loaded"
        # CPU torch's OpenMP pool belongs to the thread that first used it; a second thread's pool
        # competes with the first one's spinning workers (measured: 10 ms forward -> 20 ms).
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmentation_engine")
        self._worker: Future[None] | None = None
        self._subs: list[Any] = []
        self._image_type: type[Image] | type[CompressedImage] = Image
        self._qos = qos.IncompatibleQosWarner(self)
        self._bond = LifecycleBond(self)  # to nav2_lifecycle_manager, while active
        self._last_error = ""
        self._throttle = stats.ReasonThrottle(THROTTLE_S)
        self._options = parameters.live_options(self._param)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self._param("diagnostics_period"), self._publish_diagnostics)

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    @property
    def _state(self) -> str:
        return "unconfigured" if self._processor is None else "active" if self._worker else "inactive"

    def _on_set_parameters(self, changed: list[Parameter]) -> SetParametersResult:
        reason = params.refused_while_configured([p.name for p in changed], self._state)
        if reason is None:
            # Cross-field checks need the current value of the fields not being changed.
            values = {name: self._param(name) for name in ("min_range", "max_range", "output_size", "max_image_pixels")}
            values.update({p.name: p.value for p in changed})
            reason = params.validate(values, self._processor.class_map.names if self._processor else None)
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _after_set_parameters(self, changed: list[Parameter]) -> None:
        self._options = parameters.live_options(self._param)
        names = {p.name for p in changed}
        if "obstacle_classes" in names and self._processor is not None:
            self._processor.class_map = self._processor.class_map.with_obstacles(self._param("obstacle_classes"))
            self.get_logger().info(f"obstacle classes now {self._processor.class_map.obstacle_names}")
        if names & {"obstacle_classes", "confidence_threshold"}:
            self._publish_class_map()  # LabelInfo carries the threshold: late subscribers must see the new one

    # lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._options = parameters.live_options(self._param)
        reason = params.validate({p.name: self._param(p.name) for p in params.PARAMS if not p.model_default})
        obstacles = parameters.optional_string_array(self, "obstacle_classes")
        try:
            if reason:
                raise ValueError(f"invalid parameters: {reason}")
            triton = TritonOptions(
                timeout_s=self._param("triton_timeout"), ssl=self._param("triton_ssl"),
                root_certificates=self._param("triton_root_certificates"),
                private_key=self._param("triton_private_key"),
                certificate_chain=self._param("triton_certificate_chain"),
                shared_memory=self._param("triton_shared_memory"))
            processor = self._engine.submit(
                FrameProcessor.load, self._param("model"), self._param("device"), self._param("fp16"),
                self._param("model_description") or None, self._param("warmup_iterations"), obstacles,
                triton=triton, cpu_threads=self._param("cpu_threads")).result()
        except (ModelLoadError, DeviceError, ValueError) as exc:
            self._last_error = str(exc)
            self.get_logger().fatal(self._last_error)
            return TransitionCallbackReturn.FAILURE
        self._processor, self._last_error = processor, ""
        class_map, spec = processor.class_map, processor.pipeline.spec
        if obstacles is None:  # make the effective value visible to `ros2 param get`
            self.set_parameters([Parameter("obstacle_classes", Parameter.Type.STRING_ARRAY, class_map.obstacle_names)])
        self._device_text = describe_device(processor.pipeline.device,
                                            getattr(processor.pipeline.runtime, "cpu_threads", None))
        self._diag_timer.timer_period_ns = int(self._param("diagnostics_period") * 1e9)
        self._cameras = {name: Camera(name) for name in self._param("cameras")}
        for camera in self._cameras.values():
            camera.outputs = Outputs(self, self._param("output_reliability"),
                                     lambda topic: self._qos.handler(topic, True), camera.prefix)
        self._publish_class_map()
        self.get_logger().info(
            f"model '{spec.name}' ({len(class_map)} classes: {', '.join(class_map.names)}) on {self._device_text}, "
            f"backend {processor.pipeline.backend}, input {spec.input_width}x{spec.input_height} ({spec.resize}); "
            f"obstacles: {class_map.obstacle_names}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._create_subscriptions()
        self._slots.reopen()
        self._worker = self._engine.submit(self._work)
        self._bond.create()
        topics = ", ".join(self.resolve_topic_name(c.topic(self._image_topic())) for c in self._cameras.values())
        self.get_logger().info(f"active: listening on {topics}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        self._bond.destroy()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._slots.close()
        if self._worker is not None:
            self._worker.result()
            self._worker = None
        if self._processor is not None:
            self._engine.submit(self._processor.pipeline.release_cache).result()

    def _release(self) -> None:
        self._stop_work()
        for camera in self._cameras.values():
            if camera.outputs is not None:
                camera.outputs.destroy()
        self._cameras = {}
        if self._processor is not None:
            self._engine.submit(self._processor.close).result()
            self._processor = None
            gc.collect()
        self._device_text = "not loaded"

    # topics -------------------------------------------------------------------------------

    def _image_topic(self) -> str:
        return "image/compressed" if self._param("input_transport") == "compressed" else "image"

    def _create_subscriptions(self) -> None:
        image_qos = qos.image_input(self._param("image_reliability"), self._param("image_qos_depth"))
        self._image_type = CompressedImage if self._param("input_transport") == "compressed" else Image
        for camera in self._cameras.values():
            topic = camera.topic(self._image_topic())
            events = SubscriptionEventCallbacks(incompatible_qos=self._qos.handler(topic, publisher=False))
            # raw: the executor only takes the serialized frame; the worker reads the frames it
            # actually takes in place (core.cdr), so frames that latest-wins drops cost nothing more.
            self._subs.append(self.create_subscription(self._image_type, topic, self._on_image(camera), image_qos,
                                                       event_callbacks=events, raw=True))
            self._subs.append(self.create_subscription(CameraInfo, camera.topic("camera_info"),
                                                       self._on_camera_info(camera, "camera_info"), qos.SENSOR,
                                                       raw=True))
            if self._param("use_depth"):
                self._subs.append(self.create_subscription(Image, camera.topic("depth"), self._on_depth(camera),
                                                           image_qos, raw=True))
                self._subs.append(self.create_subscription(CameraInfo, camera.topic("depth/camera_info"),
                                                           self._on_camera_info(camera, "depth/camera_info"),
                                                           qos.SENSOR, raw=True))

    # callbacks (executor thread: cheap only) ---------------------------------------------

    def _on_image(self, camera: Camera) -> Callable[[bytes], None]:
        def store(serialized: bytes) -> None:
            dropped = self._slots.put(camera.name, (serialized, time.monotonic()))
            camera.counters.frames_in += 1
            camera.counters.dropped += int(dropped)
            self.stats.frame_received(dropped)
        return store

    def _read(self, serialized: bytes, reader: Any, topic: str) -> Any:
        """A small message read in place on the executor thread (microseconds); None and a
        throttled error when the bytes are not a well-formed message."""
        try:
            return reader(serialized)
        except ImageFormatError as exc:
            self._report(f"{topic}:{exc.kind}", f"dropped a message on {self.resolve_topic_name(topic)}: {exc}")
            return None

    def _on_camera_info(self, camera: Camera, relative: str) -> Callable[[bytes], None]:
        topic = camera.topic(relative)

        def store(serialized: bytes) -> None:
            info = self._read(serialized, cdr.read_camera_info, topic)
            if info is not None:
                setattr(camera, "depth_info" if relative.startswith("depth") else "camera_info", info)
        return store

    def _on_depth(self, camera: Camera) -> Callable[[bytes], None]:
        topic = camera.topic("depth")

        def store(serialized: bytes) -> None:
            msg = self._read(serialized, cdr.read_image, topic)
            if msg is not None:
                camera.depth.add(stamp_to_ns(msg.header.stamp), msg)
        return store

    # worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        read = cdr.read_compressed_image if self._image_type is CompressedImage else cdr.read_image
        while not self._slots.closed:
            taken = self._slots.take_all()
            batch: list[tuple[Camera, Any, dict[str, float]]] = []
            for name, (serialized, received) in taken.items():
                camera = self._cameras.get(name)
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
            self.stats.frame_failed()
            camera.counters.errors += 1
        self._last_error = f"{type(exc).__name__}: {wire_text(str(exc), 200)}"
        self._report(f"failed:{type(exc).__name__}", f"segmentation failed: {self._last_error}")

    def _report(self, kind: str, text: str) -> None:
        """Log `text` at once, then at most every THROTTLE_S per kind of problem."""
        if self._throttle.should_report(kind):
            self.get_logger().error(text)

    def _rejected(self, camera: Camera, kind: str, text: str) -> None:
        self.stats.frame_rejected(f"{kind}: {text}")
        self._report(f"image:{kind}",
                     f"rejected frame on {self.resolve_topic_name(camera.topic(self._image_topic()))}: {text}")

    def _process(self, batch: list[tuple[Camera, Any, dict[str, float]]], done: list[Camera]) -> None:
        """One batch: a frame per camera (core.cdr messages, with their wait and read times). Each
        frame's outputs are published before the next one's are made (the pipeline reuses its
        full-size buffers)."""
        processor, opts = self._processor, self._options
        if processor is None:
            return
        inputs = []
        for camera, msg, _ in batch:
            assert camera.outputs is not None  # made at configure, with the camera
            inputs.append(FrameInput(msg, camera.outputs.narrow(opts.request, opts.use_depth),
                                     self._paired_depth(camera, stamp_to_ns(msg.header.stamp))))
        for (camera, msg, stages), out in zip(batch, processor.process_batch(inputs)):
            self._publish(camera, msg, out, stages)
            done.append(camera)

    def _paired_depth(self, camera: Camera, stamp_ns: int) -> Callable[[], DepthFrame | None]:
        opts = self._options

        def paired() -> DepthFrame | None:
            depth = camera.depth.wait_match(stamp_ns, opts.depth_sync_tolerance_ns, opts.depth_wait)
            if depth is None:
                return None
            if camera.depth_info is not None:
                return DepthFrame(depth, camera.depth_info, self.resolve_topic_name(camera.topic("depth/camera_info")))
            return DepthFrame(depth, camera.camera_info, self.resolve_topic_name(camera.topic("camera_info")))
        return paired

    def _publish(self, camera: Camera, msg: Any, out: FrameOutputs, stages: dict[str, float]) -> None:
        outputs = camera.outputs
        assert outputs is not None
        stamp_ns = stamp_to_ns(msg.header.stamp)
        status = out.status
        if status.image_error:
            self._rejected(camera, status.image_error_kind, status.image_error)
            return
        start = time.perf_counter()
        outputs.publish_frame(msg.header, out, self._checked_camera_info(camera, out))
        stages.update(out.timings_ms, publish=(time.perf_counter() - start) * 1e3)
        for not_a_stage in ("total", "batch"):
            stages.pop(not_a_stage, None)
        camera.counters.frames_out += 1
        if status.depth is DepthStatus.OK:
            self.stats.depth_result(None)
        elif status.depth.counter is not None:
            detail = f"{status.depth.value} ({self.resolve_topic_name(camera.topic('depth'))})"
            detail += f": {status.depth_error}" if status.depth_error else ""
            self.stats.depth_result(status.depth.counter, detail)
            if status.depth is not DepthStatus.UNPAIRED:  # expected now and then: counted, not logged
                self._report(f"depth:{status.depth.name}", f"no cloud: {detail}")
        latency = (self.get_clock().now().nanoseconds - stamp_ns) / 1e6 if stamp_ns > 0 else None
        self.stats.frame_done(out.timings_ms["inference"], out.timings_ms["total"], latency, stages)

    def _checked_camera_info(self, camera: Camera, out: FrameOutputs) -> Any:
        """The color camera_info to republish with this frame, or None when there is none or it is
        unusable (counted, logged per topic, and WARN in diagnostics until a good one arrives)."""
        info = camera.camera_info
        if info is None or out.segmentation is None:
            return None
        topic = self.resolve_topic_name(camera.topic("camera_info"))
        placement = out.segmentation.placement
        try:
            intrinsics_from_camera_info(list(info.k), info.width, info.height, placement.src_w, placement.src_h,
                                        list(info.d), list(info.p))
        except CalibrationError as exc:
            self.stats.camera_info_invalid(topic, str(exc))
            self._report(f"camera_info:{topic}", f"not republishing the calibration on {topic}: {exc}")
            return None
        self.stats.camera_info_valid(topic)
        return info

    # class map + diagnostics --------------------------------------------------------------

    def _publish_class_map(self) -> None:
        if self._processor is None:
            return
        for camera in self._cameras.values():
            if camera.outputs is not None:
                camera.outputs.publish_class_map(self._processor.class_map, self.get_clock().now().to_msg(),
                                                 self._options.request.confidence_threshold)

    def _publish_diagnostics(self) -> None:
        processor = self._processor
        model = (processor.class_map.model_name or processor.pipeline.spec.name) if processor else self._param("model")
        state = diagnostics.NodeState(
            node_name=self.get_name(), hardware_id=self.get_fully_qualified_name(),
            configured=processor is not None, active=bool(self._subs), last_error=self._last_error,
            device=self._device_text, model=model, use_depth=self._param("use_depth"),
            input_timeout=self._param("input_timeout"), max_latency=self._param("max_latency"),
            inference_server=runtime_health(processor.pipeline.runtime) if processor else None,
            cameras=[(c.label, c.counters) for c in self._cameras.values()]
            if len(self._cameras) > 1 or "" not in self._cameras else [])
        self._diag_pub.publish(diagnostics.build(self.stats.snapshot(), state, self.get_clock().now().to_msg()))

    def close(self) -> None:
        """Stop the worker, unload the model and end the engine thread (process exit)."""
        self._release()
        self._engine.shutdown(wait=True)


def main(argv: list[str] | None = None) -> int:
    # rclpy's own SIGINT/SIGTERM handlers invalidate the context at once, while the worker may be
    # publishing a frame ("publisher's context is invalid"). Ours only ask the spin loop to stop;
    # close() then joins the worker while the context is still valid.
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = SegmentationNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.get_parameter("autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().fatal("configure failed; exiting (see the message above)")
                return 1
            node.trigger_activate()
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)  # a signal is seen within 0.1 s
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
