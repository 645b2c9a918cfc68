"""segmentation_node: wiring only. Parameters, QoS, topics, threads; the work is engine.FrameProcessor.

Lifecycle (a managed node; `autostart` runs configure + activate at start): configure re-reads
the configure-time parameters, loads and warms up the model on the engine thread and publishes
the class map (transient-local); activate subscribes (`cameras.CameraInputs`) and starts the
engine loop (`worker.EngineWorker`); deactivate stops both and releases cached GPU memory;
cleanup unloads the model, after which new configure-time parameters (another model, device,
topics) may be set and configured.

Cameras (`cameras`): each name C gets C/image ... C/segmentation/...; '' keeps the plain names.
The process itself (signals, the spin loop) is apps/segmentation_node.py's.
"""
from __future__ import annotations

import gc
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ..engine.frame import FrameProcessor
from ..live import params, stats
from ..live.health import HealthWatch
from ..model.base import DeviceError, ModelLoadError, describe_device, describe_runtime
from ..model.runtimes.triton import TritonOptions, is_triton_model
from ..wire.errors import bounded, first_line
from . import compat, diagnostics, parameters, qos
from .bond import LifecycleBond
from .cameras import Camera, CameraInputs
from .outputs import CameraPublishers
from .webview import WebView
from .worker import EngineWorker, Interrupted

THROTTLE_S = 5.0


class SegmentationNode(LifecycleNode):
    def __init__(self, node_name: str = "segmentation_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for warning in parameters.declare_all(self):
            self.get_logger().warning(warning)
        self.stats = stats.NodeStats()
        self._throttle = stats.ReasonThrottle(THROTTLE_S)
        self._qos = qos.IncompatibleQosWarner(self)
        self.worker = EngineWorker(self, self.stats, self.report)
        self.inputs = CameraInputs(self, self.worker.slots, self.stats, self.report, self._qos.handler)
        self._bond = LifecycleBond(self)  # to nav2_lifecycle_manager, while active
        self.web = WebView(self)  # the live view in a browser, from configure to cleanup (web_port)
        self.device_text = "not loaded"
        self.load_error = ""
        self._server_watch = HealthWatch()
        self.worker.options = parameters.live_options(self.param)
        compat.add_parameter_callbacks(self, self._on_set_parameters, self._after_set_parameters)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.param("diagnostics_period"), self._publish_diagnostics)

    def param(self, name: str) -> Any:
        """The parameter's value; None for an array left unset (see params.ParamDef.model_default)."""
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:
            return None

    def report(self, kind: str, text: str) -> None:
        """Log `text` at once, then at most every THROTTLE_S per kind of problem."""
        if self._throttle.should_report(kind):
            self.get_logger().error(text)

    @property
    def _state(self) -> str:
        return "unconfigured" if self.worker.processor is None else "active" if self.worker.running else "inactive"

    def _on_set_parameters(self, changed: list[Parameter]) -> SetParametersResult:
        reason = params.refused_while_configured([p.name for p in changed], self._state)
        if reason is None:
            # Cross-field checks need the current value of the fields not being changed.
            values = {name: self.param(name) for name in ("min_range", "max_range", "output_size", "max_image_pixels")}
            values.update({p.name: p.value for p in changed})
            processor = self.worker.processor
            reason = params.validate(values, processor.class_map.names if processor else None)
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _after_set_parameters(self, changed: list[Parameter]) -> None:
        # The new values from `changed`: on Humble the node stores them only after this returns.
        new = {p.name: p.value for p in changed}
        self.worker.options = parameters.live_options(self.param, new)
        processor = self.worker.processor
        if "obstacle_classes" in new and processor is not None:
            processor.class_map = processor.class_map.with_obstacles(new["obstacle_classes"])
            self.get_logger().info(f"obstacle classes now {processor.class_map.obstacle_names}")
        if new.keys() & {"web_max_fps", "web_jpeg_quality"}:
            self.web.update()
        if "depth_exclude_classes" in new and processor is not None:
            processor.depth_exclude_classes = list(new["depth_exclude_classes"] or [])
            self.get_logger().info(f"depth_filtered now without {processor.depth_exclude_classes}")
        if "free_classes" in new and processor is not None:
            processor.class_map = processor.class_map.with_free(list(new["free_classes"] or []))
            self.get_logger().info(f"free (ground) classes now {processor.class_map.free_names}")
        if new.keys() & {"ground_projection", "camera_pose"} and processor is not None:
            self._listen_tf()
        if new.keys() & {"obstacle_classes", "confidence_threshold"}:
            self._publish_class_map()  # LabelInfo carries the threshold: late subscribers must see the new one

    # lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.worker.options = parameters.live_options(self.param)
        # Arrays left unset are not checked; values given at startup were never through on_set.
        reason = params.validate({p.name: value for p in params.PARAMS if (value := self.param(p.name)) is not None
                                  and not (p.declared_unset and p.array_type == "string")})
        obstacles = parameters.optional_string_array(self, "obstacle_classes")
        free = parameters.optional_string_array(self, "free_classes")
        excluded = parameters.optional_string_array(self, "depth_exclude_classes") or []
        try:
            if reason:
                raise ValueError(f"invalid parameters: {reason}")
            processor = self.worker.call(
                FrameProcessor.load, self.param("model"), self.param("device"), self.param("fp16"),
                self.param("model_description") or None, self.param("warmup_iterations"), obstacles, free,
                triton=self._triton_options(), cpu_threads=self.param("cpu_threads"), runtime=self.param("runtime"),
                remote=is_triton_model(self.param("model")))
            try:
                processor.depth_exclude_classes = excluded
            except ValueError:
                self.worker.call(processor.close)
                raise
        except (ModelLoadError, DeviceError, ValueError) as exc:
            self.load_error = bounded(str(exc))
            self.get_logger().fatal(self.load_error)
            return TransitionCallbackReturn.FAILURE
        except Interrupted as exc:
            self.load_error = str(exc)
            self.get_logger().warning(f"configure: {exc}")
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # noqa: BLE001 - rclpy would swallow it and the reason with it
            self.load_error = f"configure failed: {type(exc).__name__}: {first_line(exc)}"
            self.get_logger().fatal(self.load_error)
            return TransitionCallbackReturn.FAILURE
        self.load_error = self.worker.last_error = ""
        self.worker.processor = processor
        class_map, spec = processor.class_map, processor.pipeline.spec
        self._listen_tf()
        self.device_text = describe_device(processor.pipeline.device, processor.pipeline.runtime.cpu_threads)
        self._diag_timer.timer_period_ns = int(self.param("diagnostics_period") * 1e9)
        image = "image/compressed" if self.param("input_transport") == "compressed" else "image"
        depth = "depth/compressedDepth" if self.param("input_transport_depth") == "compressedDepth" else "depth"
        self.worker.cameras = {name: Camera(name, image, depth) for name in self.param("cameras")}
        for camera in self.worker.cameras.values():
            camera.outputs = CameraPublishers(self, self.param("output_reliability"),
                                     lambda topic: self._qos.handler(topic, True), camera.prefix)
        self._publish_class_map()
        self.web.start(class_map.model_name or spec.name, class_map, list(self.worker.cameras))
        self.worker.web_feed = self.web.feed
        self._server_watch = HealthWatch()
        self.get_logger().info(
            f"model '{spec.name}' ({len(class_map)} classes: {', '.join(class_map.names)}) run by "
            f"{describe_runtime(processor.pipeline.runtime, self.device_text)}, pre/post-processing in "
            f"{processor.pipeline.backend} on {processor.pipeline.device}, input {spec.input_width}x{spec.input_height} "
            f"({spec.resize}); obstacles: {class_map.obstacle_names}; excluded from depth_filtered: {excluded}")
        return super().on_configure(state)

    def _listen_tf(self) -> None:
        """TF is subscribed only while ground projection takes poses from it."""
        self.worker.poses.listen(bool(self.param("ground_projection")) and not self.param("camera_pose"))

    def _triton_options(self) -> TritonOptions:
        return TritonOptions(
            timeout_s=self.param("triton_timeout"), ssl=self.param("triton_ssl"),
            root_certificates=self.param("triton_root_certificates"),
            private_key=self.param("triton_private_key"),
            certificate_chain=self.param("triton_certificate_chain"),
            shared_memory=self.param("triton_shared_memory"))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        cameras = list(self.worker.cameras.values())
        compressed = self.param("input_transport") == "compressed"
        self.inputs.subscribe(cameras, compressed, self.param("image_reliability"), self.param("image_qos_depth"),
                              self.param("use_depth"))
        self.worker.start(compressed)
        self._bond.create()
        topics = ", ".join(self.resolve_topic_name(c.image_topic) for c in cameras)
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
        self.inputs.unsubscribe()
        self.worker.stop()
        if self.worker.processor is not None:
            self.worker.call_bounded(self.worker.processor.pipeline.release_cache)

    def _release(self) -> None:
        self._stop_work()
        self.worker.poses.listen(False)
        for camera in self.worker.cameras.values():
            if camera.outputs is not None:
                camera.outputs.destroy()
        self.worker.cameras = {}
        self.worker.web_feed = None
        self.web.stop()
        if self.worker.processor is not None:
            self.worker.call_bounded(self.worker.processor.close)
            self.worker.processor = None
            gc.collect()
        self.device_text = "not loaded"

    # class map + diagnostics --------------------------------------------------------------

    def _publish_class_map(self) -> None:
        processor, options = self.worker.processor, self.worker.options
        if processor is None or options is None:
            return
        for camera in self.worker.cameras.values():
            if camera.outputs is not None:
                camera.outputs.publish_class_map(processor.class_map, self.get_clock().now().to_msg(),
                                                 options.request.confidence_threshold)

    def _publish_diagnostics(self) -> None:
        advice = self.inputs.waiting_advice(self.param("input_timeout"))
        if advice:
            self.get_logger().warning(advice)
        snapshot, state = self.stats.snapshot(), diagnostics.node_state(self)
        server = state.inference_server
        change = self._server_watch.update(server.ok, server.message, time.monotonic()) if server else None
        if change and change[0] == "info":  # one severity per call site (rclpy)
            self.get_logger().info(change[1])
        elif change:
            self.get_logger().error(change[1])
        array = diagnostics.build(snapshot, state, self.get_clock().now().to_msg())
        self._diag_pub.publish(array)
        self.web.publish(array)

    def close(self) -> None:
        """Stop the worker, unload the model and end the engine thread (process exit)."""
        self._release()
        self.worker.shutdown()
