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
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ..engine.frame import FrameProcessor
from ..live import params, stats
from ..model.base import DeviceError, ModelLoadError, describe_device
from ..model.runtimes.triton import TritonOptions
from . import compat, diagnostics, parameters, qos
from .bond import LifecycleBond
from .cameras import Camera, CameraInputs
from .outputs import CameraPublishers
from .worker import EngineWorker

THROTTLE_S = 5.0


class SegmentationNode(LifecycleNode):
    def __init__(self, node_name: str = "segmentation_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        parameters.declare_all(self)
        self.stats = stats.NodeStats()
        self._throttle = stats.ReasonThrottle(THROTTLE_S)
        self._qos = qos.IncompatibleQosWarner(self)
        self.worker = EngineWorker(self, self.stats, self.report)
        self.inputs = CameraInputs(self, self.worker.slots, self.stats, self.report, self._qos.handler)
        self._bond = LifecycleBond(self)  # to nav2_lifecycle_manager, while active
        self.device_text = "not loaded"
        self.load_error = ""
        self.worker.options = parameters.live_options(self.param)
        compat.add_parameter_callbacks(self, self._on_set_parameters, self._after_set_parameters)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.param("diagnostics_period"), self._publish_diagnostics)

    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

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
        if new.keys() & {"obstacle_classes", "confidence_threshold"}:
            self._publish_class_map()  # LabelInfo carries the threshold: late subscribers must see the new one

    # lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.worker.options = parameters.live_options(self.param)
        reason = params.validate({p.name: self.param(p.name) for p in params.PARAMS if not p.model_default})
        obstacles = parameters.optional_string_array(self, "obstacle_classes")
        try:
            if reason:
                raise ValueError(f"invalid parameters: {reason}")
            processor = self.worker.call(
                FrameProcessor.load, self.param("model"), self.param("device"), self.param("fp16"),
                self.param("model_description") or None, self.param("warmup_iterations"), obstacles,
                triton=self._triton_options(), cpu_threads=self.param("cpu_threads"))
        except (ModelLoadError, DeviceError, ValueError) as exc:
            self.load_error = str(exc)
            self.get_logger().fatal(self.load_error)
            return TransitionCallbackReturn.FAILURE
        self.load_error = self.worker.last_error = ""
        self.worker.processor = processor
        class_map, spec = processor.class_map, processor.pipeline.spec
        if obstacles is None:  # make the effective value visible to `ros2 param get`
            self.set_parameters([Parameter("obstacle_classes", Parameter.Type.STRING_ARRAY, class_map.obstacle_names)])
        self.device_text = describe_device(processor.pipeline.device, processor.pipeline.runtime.cpu_threads)
        self._diag_timer.timer_period_ns = int(self.param("diagnostics_period") * 1e9)
        image = "image/compressed" if self.param("input_transport") == "compressed" else "image"
        depth = "depth/compressedDepth" if self.param("input_transport_depth") == "compressedDepth" else "depth"
        self.worker.cameras = {name: Camera(name, image, depth) for name in self.param("cameras")}
        for camera in self.worker.cameras.values():
            camera.outputs = CameraPublishers(self, self.param("output_reliability"),
                                     lambda topic: self._qos.handler(topic, True), camera.prefix)
        self._publish_class_map()
        self.get_logger().info(
            f"model '{spec.name}' ({len(class_map)} classes: {', '.join(class_map.names)}) on {self.device_text}, "
            f"backend {processor.pipeline.backend}, input {spec.input_width}x{spec.input_height} ({spec.resize}); "
            f"obstacles: {class_map.obstacle_names}")
        return super().on_configure(state)

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
            self.worker.call(self.worker.processor.pipeline.release_cache)

    def _release(self) -> None:
        self._stop_work()
        for camera in self.worker.cameras.values():
            if camera.outputs is not None:
                camera.outputs.destroy()
        self.worker.cameras = {}
        if self.worker.processor is not None:
            self.worker.call(self.worker.processor.close)
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
        snapshot = self.stats.snapshot()
        self._diag_pub.publish(diagnostics.build(snapshot, diagnostics.node_state(self), self.get_clock().now().to_msg()))

    def close(self) -> None:
        """Stop the worker, unload the model and end the engine thread (process exit)."""
        self._release()
        self.worker.shutdown()
