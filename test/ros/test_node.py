"""segmentation_node as a separate process, driven over DDS from this test process."""
from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Log, Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import GetParameters, SetParameters  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from seg_perception.live import health  # noqa: E402
from seg_perception.ros import qos  # noqa: E402
from devtools.harness import Collector, image_msg, photo, wait_until  # noqa: E402

TIMEOUT = 30.0
LATCHED = qos.LATCHED




class LogWatcher:
    """Collects /rosout lines of one node."""

    def __init__(self, node: Any, name: str) -> None:
        self.name = name
        self.cond = threading.Condition()
        self.lines: list[tuple[int, str]] = []
        log_qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.sub = node.create_subscription(Log, "/rosout", self._on_log, log_qos)

    def _on_log(self, msg: Log) -> None:
        if msg.name.endswith(self.name):
            with self.cond:
                self.lines.append((msg.level, msg.msg))
                self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(text in line for _, line in self.lines), timeout)
            assert ok, f"no log line containing {text!r}; got {[line for _, line in self.lines]}"
            return next(line for _, line in self.lines if text in line)


class Session:
    """Topics of one running node (namespaced), seen from the test node."""

    def __init__(self, ros: Any, running: Any, outputs: tuple[str, ...] = ("mask",),
                 image_qos: QoSProfile = qos_profile_sensor_data) -> None:
        self.ros = ros
        self.running = running
        self.ns = running.namespace
        self.image_pub = ros.create_publisher(Image, f"{self.ns}/image", image_qos)
        self.info_pub = ros.create_publisher(CameraInfo, f"{self.ns}/camera_info", qos_profile_sensor_data)
        topics = []
        for out in outputs:
            msg_type = CameraInfo if out == "camera_info" else Image
            topics.append((f"{self.ns}/segmentation/{out}", msg_type))
        self.out = Collector(ros, topics)

    def topic(self, name: str) -> str:
        return f"{self.ns}/segmentation/{name}"

    def wait_ready(self) -> None:
        wait_until(lambda: self.running.proc.poll() is not None or self.image_pub.get_subscription_count() > 0,
                   TIMEOUT, "the node to subscribe to image")
        assert self.running.proc.poll() is None, self.running.log
        wait_until(lambda: all(s.get_publisher_count() > 0 for s in self.out.subs), TIMEOUT, "output publishers")
        # Our publisher can see the node's subscription before the node has matched our
        # publisher; a best-effort frame sent in that window is lost. Handshake until a mask
        # comes back, so every later single publish is heard.
        probe = image_msg(photo(64, 48), 0, 1)
        mask_topic = self.topic("mask")
        wait_until(lambda: self._probe(probe, mask_topic), TIMEOUT, "a first mask")
        self.out.clear()

    def _probe(self, probe: Image, mask_topic: str) -> bool:
        self.image_pub.publish(probe)
        try:
            self.out.wait_for(lambda m: any(x.header.stamp == probe.header.stamp for _, x in m[mask_topic]),
                              0.5, "probe")
            return True
        except TimeoutError:
            return False

    def send_and_wait(self, msg: Image, topics: tuple[str, ...] = ("mask",)) -> dict[str, Any]:
        self.image_pub.publish(msg)
        stamp = msg.header.stamp
        full = [self.topic(t) for t in topics]
        self.out.wait_for(lambda m: all(any(x.header.stamp == stamp for _, x in m[t]) for t in full),
                          TIMEOUT, f"{topics} for stamp {stamp.sec}")
        return {t: self.out.with_stamp(self.topic(t), stamp)[1] for t in topics}

    def send_with_camera_info(self, msg: Image, info: CameraInfo, topics: tuple[str, ...]) -> dict[str, Any]:
        """Publish camera_info + image (same header) until the outputs and camera_info of one stamp arrive."""
        wanted = (*topics, "camera_info")
        for attempt in range(20):
            msg.header.stamp = Time(sec=msg.header.stamp.sec + 1, nanosec=msg.header.stamp.nanosec)
            info.header = msg.header
            self.info_pub.publish(info)
            self.image_pub.publish(msg)
            stamp = msg.header.stamp
            try:
                self.out.wait_for(lambda m: all(any(x.header.stamp == stamp for _, x in m[self.topic(t)])
                                                for t in wanted), 2.0, "outputs with camera_info")
            except TimeoutError:
                continue
            return {t: self.out.with_stamp(self.topic(t), stamp)[1] for t in wanted}
        pytest.fail("segmentation/camera_info never published with the image's stamp")

    def close(self) -> None:
        self.ros.destroy_publisher(self.image_pub)
        self.ros.destroy_publisher(self.info_pub)
        for sub in self.out.subs:
            self.ros.destroy_subscription(sub)


def call(ros: Any, srv_type: Any, name: str, request: Any) -> Any:
    client = ros.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=TIMEOUT), f"service {name} not available"
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(TIMEOUT), f"no answer from {name}"
        return future.result()
    finally:
        ros.destroy_client(client)


def set_params(ros: Any, running: Any, **values: Any) -> list[Any]:
    request = SetParameters.Request()
    for key, value in values.items():
        pv = ParameterValue()
        if isinstance(value, bool):
            pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
        elif isinstance(value, float):
            pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
        elif isinstance(value, int):
            pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
        elif isinstance(value, list):
            pv.type, pv.string_array_value = ParameterType.PARAMETER_STRING_ARRAY, value
        else:
            pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
        request.parameters.append(Parameter(name=key, value=pv))
    return call(ros, SetParameters, f"{running.namespace}/{running.name}/set_parameters", request).results


def get_params(ros: Any, running: Any, *names: str) -> list[Any]:
    request = GetParameters.Request(names=list(names))
    return call(ros, GetParameters, f"{running.namespace}/{running.name}/get_parameters", request).values


@pytest.fixture
def session(ros: Any, seg_node: Any) -> Any:
    sessions: list[Session] = []

    def make(params: dict[str, Any] | None = None, outputs: tuple[str, ...] = ("mask",), **kwargs: Any) -> Session:
        running = seg_node({"use_depth": False, "warmup_iterations": 1, **(params or {})})
        s = Session(ros, running, outputs, **kwargs)
        sessions.append(s)
        return s

    yield make
    for s in sessions:
        s.close()


def test_every_output_copies_header_with_right_size_and_encoding(session: Any) -> None:
    s = session(outputs=("mask", "confidence", "color_mask", "overlay", "camera_info"))
    s.wait_ready()
    rgb = photo(320, 240)
    msg = image_msg(rgb, 1234, 567, frame_id="head_camera_optical")
    info = CameraInfo(header=msg.header, width=320, height=240,
                      k=[200.0, 0.0, 159.5, 0.0, 200.0, 119.5, 0.0, 0.0, 1.0],
                      p=[200.0, 0.0, 159.5, 0.0, 0.0, 200.0, 119.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    s.info_pub.publish(info)
    # camera_info is optional and may reach the node after the image: resend until it is used.
    got = s.send_with_camera_info(msg, info, ("mask", "confidence", "color_mask", "overlay"))
    for name, out in got.items():
        assert out.header.stamp == msg.header.stamp, name
        assert out.header.frame_id == "head_camera_optical", name
        assert (out.width, out.height) == (320, 240), name
    assert got["mask"].encoding == "mono8" and got["mask"].step == 320
    assert got["confidence"].encoding == "mono8" and got["confidence"].step == 320
    assert got["color_mask"].encoding == "rgb8" and got["color_mask"].step == 960
    assert got["overlay"].encoding == "rgb8"
    labels = np.frombuffer(got["mask"].data, np.uint8).reshape(240, 320)
    assert 0.2 < (labels == 1).mean() < 0.8, "the astronaut should be segmented as a person"
    cam = got["camera_info"]
    assert cam.header.frame_id == "head_camera_optical" and (cam.width, cam.height) == (320, 240)
    assert list(cam.k) == list(info.k)


def test_explicit_output_size_scales_outputs_and_camera_info(session: Any) -> None:
    s = session({"output_size": "160x120"}, outputs=("mask", "camera_info"))
    s.wait_ready()
    info = CameraInfo(width=320, height=240, k=[200.0, 0.0, 159.5, 0.0, 200.0, 119.5, 0.0, 0.0, 1.0],
                      p=[200.0, 0.0, 159.5, 0.0, 0.0, 200.0, 119.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    msg = image_msg(photo(320, 240), 50)
    got = s.send_with_camera_info(msg, info, ("mask",))
    cam = got["camera_info"]
    assert (got["mask"].width, got["mask"].height, got["mask"].step) == (160, 120, 160)
    k = list(cam.k)
    assert (cam.width, cam.height) == (160, 120)
    assert k[0] == pytest.approx(100.0) and k[2] == pytest.approx((159.5 + 0.5) * 0.5 - 0.5)


def test_latest_frame_wins_under_a_burst(ros: Any, session: Any) -> None:
    # Reliable both ways with deep queues: DDS delivers every frame of the burst to the node, so
    # any thinning is the node's own latest-wins slot, which counts what it replaces.
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    s = session({"image_reliability": "reliable", "image_qos_depth": 100, "diagnostics_period": 0.2},
                image_qos=reliable)
    diags = Collector(ros, [("/diagnostics", DiagnosticArray)])
    s.wait_ready()
    rgb = photo(640, 480)
    s.send_and_wait(image_msg(rgb, 1))  # warm path
    s.out.clear()
    burst = [image_msg(rgb, 100 + i) for i in range(40)]
    for msg in burst:
        s.image_pub.publish(msg)
    last = burst[-1].header.stamp
    s.out.wait_for(lambda m: any(x.header.stamp == last for _, x in m[s.topic("mask")]), TIMEOUT,
                   "the mask of the newest frame")
    stamps = [x.header.stamp.sec for _, x in s.out.messages[s.topic("mask")]]
    assert stamps == sorted(stamps), "outputs must come in input order"
    assert len(stamps) < len(burst), "a burst faster than the model must be thinned, not queued"

    def counters() -> dict[str, int] | None:
        for _, arr in reversed(diags.messages["/diagnostics"]):
            for st in arr.status:
                if st.name == f"{s.running.name}: segmentation":
                    return {kv.key: int(kv.value) for kv in st.values if kv.value.isdigit()}
        return None

    # Every frame the node received was either segmented or replaced in the slot by a newer one.
    def settled(_: Any) -> bool:
        c = counters()
        return c is not None and c["frames_in"] >= len(burst) and c["frames_in"] == c["frames_out"] + c["dropped_frames"]
    diags.wait_for(settled, TIMEOUT, "diagnostics accounting for the whole burst")
    c = counters()
    assert c is not None and c["dropped_frames"] >= len(burst) - len(stamps) > 0, c
    ros.destroy_subscription(diags.subs[0])


def rejected_count(messages: dict[str, Any], node_name: str) -> int:
    """The newest `rejected_inputs` the node reported in /diagnostics (0 before any report)."""
    for _, arr in reversed(messages["/diagnostics"]):
        for st in arr.status:
            if st.name == f"{node_name}: segmentation":
                return int({kv.key: kv.value for kv in st.values}.get("rejected_inputs", 0))
    return 0


def test_bad_inputs_are_rejected_with_a_reason_and_the_node_keeps_running(ros: Any, session: Any) -> None:
    s = session({"diagnostics_period": 0.2})
    logs = LogWatcher(ros, s.running.name)
    diags = Collector(ros, [("/diagnostics", DiagnosticArray)])
    s.wait_ready()
    good = image_msg(photo(64, 48), 10)
    cases = []
    wrong = image_msg(photo(64, 48), 11)
    wrong.encoding = "rgb_foo"
    cases.append((wrong, "unsupported encoding 'rgb_foo'"))
    short = image_msg(photo(64, 48), 12)
    short.data = bytes(short.data)[:1000]
    cases.append((short, "data is 1000 bytes"))
    # Same kind of problem (geometry) as the short frame: within the throttle period it is not
    # logged again (a camera repeating one fault must not flood the log), but still rejected.
    badstep = image_msg(photo(64, 48), 13)
    badstep.step = 10
    cases.append((badstep, None))
    empty = Image(encoding="rgb8")
    empty.header.stamp = Time(sec=14)
    cases.append((empty, None))
    for count, (msg, reason) in enumerate(cases, start=1):
        # Resent until the node counts it (best effort may lose a frame): the count, not the
        # absence of an output, proves the frame was refused rather than segmented.
        def counted(msg: Image = msg, count: int = count) -> bool:
            s.image_pub.publish(msg)
            try:
                diags.wait_for(lambda m: rejected_count(m, s.running.name) >= count, 1.0, "the rejection")
            except TimeoutError:
                return False
            return True
        wait_until(counted, TIMEOUT, f"rejection {count} counted in /diagnostics")
        if reason is not None:
            line = logs.wait_for(reason)
            assert "rejected frame" in line
        # the next good frame is still segmented
        good.header.stamp = Time(sec=good.header.stamp.sec + 100)
        s.send_and_wait(good)
    assert rejected_count(diags.messages, s.running.name) == len(cases)
    bad_stamps = {msg.header.stamp.sec for msg, _ in cases}
    assert not [m for _, m in s.out.messages[s.topic("mask")] if m.header.stamp.sec in bad_stamps]
    assert s.running.proc.poll() is None
    ros.destroy_subscription(diags.subs[0])


def test_corrupt_jpeg_on_compressed_input_is_rejected_then_good_jpeg_segmented(ros: Any, session: Any) -> None:
    s = session({"input_transport": "compressed"})
    logs = LogWatcher(ros, s.running.name)
    pub = ros.create_publisher(CompressedImage, f"{s.ns}/image/compressed", qos_profile_sensor_data)
    wait_until(lambda: pub.get_subscription_count() > 0, TIMEOUT, "compressed subscription")
    wait_until(lambda: s.out.subs[0].get_publisher_count() > 0, TIMEOUT, "mask publisher")
    bad = CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0 not a jpeg")
    bad.header.stamp = Time(sec=1)

    def rejected() -> bool:
        # best effort: resend until the node has matched us and says why it refuses the frame
        pub.publish(bad)
        try:
            logs.wait_for("corrupt", 0.5)
            return True
        except AssertionError:
            return False
    wait_until(rejected, TIMEOUT, "the corrupt-JPEG error")
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(photo(320, 240), cv2.COLOR_RGB2BGR))
    good = CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes())
    good.header.stamp = Time(sec=2)
    good.header.frame_id = "cam"
    pub.publish(good)
    s.out.wait_for(lambda m: any(x.header.stamp.sec == 2 for _, x in m[s.topic("mask")]), TIMEOUT, "mask")
    mask = s.out.with_stamp(s.topic("mask"), good.header.stamp)[1]
    assert (mask.width, mask.height, mask.header.frame_id) == (320, 240, "cam")
    ros.destroy_publisher(pub)


def test_runtime_parameter_changes_are_validated_and_applied(ros: Any, session: Any) -> None:
    s = session(outputs=("mask", "confidence"))
    s.wait_ready()
    running = s.running
    assert [r.successful for r in set_params(ros, running, overlay_alpha=0.8)] == [True]
    refused = set_params(ros, running, overlay_alpha=1.5)[0]
    assert not refused.successful
    refused = set_params(ros, running, min_range=20.0)[0]
    assert not refused.successful and "max_range" in refused.reason
    refused = set_params(ros, running, obstacle_classes=["unicorn"])[0]
    assert not refused.successful and "unicorn" in refused.reason
    refused = set_params(ros, running, model="other.pt")[0]
    assert not refused.successful, "model is read-only"
    refused = set_params(ros, running, output_size="big")[0]
    assert not refused.successful and "WIDTHxHEIGHT" in refused.reason
    # Effect: every pixel whose published confidence is below ceil(0.95 * 255) becomes 255.
    assert set_params(ros, running, confidence_threshold=0.95)[0].successful
    got = s.send_and_wait(image_msg(photo(160, 120), 5), ("mask", "confidence"))
    labels = np.frombuffer(got["mask"].data, np.uint8)
    confidence = np.frombuffer(got["confidence"].data, np.uint8)
    assert np.array_equal(labels == 255, confidence < 243)
    assert 0 < (labels == 255).sum() < labels.size
    assert set_params(ros, running, confidence_threshold=0.0, output_size="80x60")[0].successful
    mask = s.send_and_wait(image_msg(photo(160, 120), 6))["mask"]
    assert (mask.width, mask.height) == (80, 60)
    assert set(np.unique(np.frombuffer(mask.data, np.uint8))) <= {0, 1}
    values = get_params(ros, running, "overlay_alpha")
    assert values[0].double_value == pytest.approx(0.8)
    # Unset stays unset (the model's own obstacle classes, which the class map shows): the node
    # never writes a model's classes back, or configuring another model would refuse them.
    assert all(v.type == 0 for v in get_params(ros, running, "obstacle_classes"))


def test_overlay_alpha_weights_the_class_color_in_the_overlay(ros: Any, session: Any) -> None:
    """The effect, not the stored value: alpha 0 republishes the photo, alpha 1 the color mask
    wherever a class is drawn, and 0.8 blends them 1:4 there."""
    s = session(outputs=("mask", "overlay", "color_mask"))
    s.wait_ready()
    rgb = photo(160, 120)
    got = {}
    for stamp, alpha in ((21, 0.0), (22, 1.0), (23, 0.8)):
        assert set_params(ros, s.running, overlay_alpha=alpha)[0].successful
        out = s.send_and_wait(image_msg(rgb, stamp), ("overlay", "color_mask"))
        got[alpha] = {k: np.frombuffer(m.data, np.uint8).reshape(120, 160, 3).astype(int) for k, m in out.items()}
    color = got[1.0]["color_mask"]
    drawn = np.any(got[1.0]["overlay"] != rgb, axis=2)
    assert 0 < drawn.sum() < drawn.size, "the photo must have drawn and undrawn pixels"
    assert np.array_equal(got[0.0]["overlay"], rgb)
    assert np.array_equal(got[1.0]["overlay"][drawn], color[drawn])
    expected = 0.2 * rgb[drawn] + 0.8 * color[drawn]
    assert np.abs(got[0.8]["overlay"][drawn] - expected).max() <= 1
    assert np.array_equal(got[0.8]["overlay"][~drawn], rgb[~drawn])


def test_class_map_reaches_a_late_subscriber_and_follows_obstacle_changes(ros: Any, session: Any) -> None:
    from seg_perception.msg import ClassMap

    s = session()
    s.wait_ready()
    # Subscribe only now, after the node published its map: transient-local must still deliver it.
    late = Collector(ros, [(s.topic("class_map"), ClassMap)], LATCHED)
    late.wait_for(lambda m: len(m[s.topic("class_map")]) >= 1, TIMEOUT, "class map")
    cmap = late.messages[s.topic("class_map")][-1][1]
    assert cmap.model_name == "mediapipe_selfie_segmentation"
    assert [(c.id, c.name, c.obstacle) for c in cmap.classes] == [(0, "background", False), (1, "person", True)]
    assert list(cmap.classes[1].color) == [220, 20, 60]
    assert set_params(ros, s.running, obstacle_classes=["background"])[0].successful
    late.wait_for(lambda m: any(c.name == "background" and c.obstacle for c in m[s.topic("class_map")][-1][1].classes),
                  TIMEOUT, "updated class map")
    ros.destroy_subscription(late.subs[0])


def test_reliable_subscription_to_best_effort_camera_warns_with_the_fix(ros: Any, session: Any) -> None:
    s = session({"image_reliability": "reliable"})
    logs = LogWatcher(ros, s.running.name)
    # s.image_pub is best-effort (sensor data): incompatible with the node's reliable subscription.
    line = logs.wait_for("image_reliability:=best_effort")
    assert "BEST_EFFORT" in line


def test_openvino_runtime_segments_like_the_default(session: Any) -> None:
    """runtime:=openvino (optional extra: skipped where openvino is absent) runs the built-in from
    its ONNX export and gives the same mask as torch on the same photo."""
    from seg_perception.model.runtimes.openvino import openvino_available

    why = openvino_available()
    if why is not None:
        pytest.skip(why)
    rgb = photo(320, 240)
    masks = {}
    for engine in ("torch", "openvino"):
        s = session({"runtime": engine, "cpu_threads": 1})
        s.wait_ready()
        got = s.send_and_wait(image_msg(rgb, 77, 5, frame_id="cam"))
        assert got["mask"].header.frame_id == "cam" and got["mask"].header.stamp.sec == 77
        masks[engine] = np.frombuffer(got["mask"].data, np.uint8).reshape(240, 320)
    assert 0.2 < (masks["torch"] == 1).mean() < 0.8
    assert float(np.mean(masks["torch"] != masks["openvino"])) < 0.01


def test_diagnostics_report_rates_and_counters(ros: Any, session: Any) -> None:
    s = session({"diagnostics_period": 0.5, "max_latency": 30.0})  # OK even on a loaded machine
    s.wait_ready()
    diags = Collector(ros, [("/diagnostics", DiagnosticArray)])
    rgb = photo(160, 120)
    sent = [0]

    sent_at: list[float] = []

    def tick() -> None:
        sent[0] += 1
        sent_at.append(time.monotonic())
        msg = image_msg(rgb, 0)
        msg.header.stamp = ros.get_clock().now().to_msg()  # real stamps: latency is measured from them
        s.image_pub.publish(msg)

    timer = ros.create_timer(0.1, tick)  # a 10 Hz camera
    try:
        def fresh_status(m: dict[str, Any]) -> bool:
            for _, arr in m["/diagnostics"]:
                for st in arr.status:
                    values = {kv.key: kv.value for kv in st.values}
                    if s.running.name in st.name and int(values.get("frames_out", 0)) >= 15:
                        return True
            return False
        # A loaded machine (load 14 on 2 cores) serves a few frames a second: wait on the count.
        diags.wait_for(fresh_status, TIMEOUT * 3, "diagnostics after 15 frames")
    finally:
        ros.destroy_timer(timer)
    status = [st for _, arr in diags.messages["/diagnostics"] for st in arr.status
              if st.name == f"{s.running.name}: segmentation"][-1]
    values = {kv.key: kv.value for kv in status.values}
    for key in ("input_rate_hz", "output_rate_hz", "inference_ms", "latency_p50_ms", "dropped_frames",
                "rejected_inputs", "device", "model"):
        assert key in values, key
    # Against the rate this side really published at over the node's 5 s window: on a loaded
    # machine a 10 Hz timer runs slower, and the node must report what it got, not 10 Hz.
    recent = [t for t in sent_at if t > sent_at[-1] - 5.0]
    published_hz = (len(recent) - 1) / (recent[-1] - recent[0])
    assert 0.6 * published_hz < float(values["input_rate_hz"]) < 1.4 * published_hz, (values, published_hz)
    got = [r for r, _ in s.out.messages[s.topic("mask")]]
    got = [r for r in got if r > got[-1] - 5.0]
    received_hz = (len(got) - 1) / (got[-1] - got[0]) if len(got) > 2 else 0.0
    assert 0.6 * received_hz <= float(values["output_rate_hz"]) <= 1.4 * received_hz + 0.5, (values, received_hz)
    assert float(values["inference_ms"]) > 0
    assert values["device"].startswith("cpu") and values["model"] == "mediapipe_selfie_segmentation"
    # The level depends on the machine's speed (a busy one rightly says WARN "model too slow" at
    # 248 ms per frame): check that the verdict is the one its own measurements call for.
    assert values["rejected_inputs"] == "0" and values["errors"] == "0", values
    level = status.level[0]
    if level == 0:
        assert status.message.startswith("segmenting at"), status.message
    else:
        assert level == 1, (status.message, values)
        slow = health.throughput_problem(float(values["input_rate_hz"]), float(values["output_rate_hz"]),
                                         float(values["pipeline_ms"]), 0.0, 0.0, 0.0)
        assert ("too slow" in status.message or "dropped" in status.message) and slow is not None, \
            (status.message, values)
    ros.destroy_subscription(diags.subs[0])


def test_missing_model_stops_the_node_with_one_clear_message(seg_node: Any, tmp_path: Any) -> None:
    missing = tmp_path / "no_such_model.onnx"
    running = seg_node({"model": str(missing)})
    code = running.proc.wait(TIMEOUT)
    assert code != 0
    assert str(missing) in running.log, running.log
    assert "not found" in running.log.lower() or "does not exist" in running.log.lower(), running.log
    assert "Traceback" not in running.log, running.log


def test_cuda_requested_without_cuda_fails_configure_clearly(seg_node: Any) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the absent-CUDA path is tested on CPU-only machines")
    running = seg_node({"device": "cuda"})
    assert running.proc.wait(TIMEOUT) != 0
    assert "CUDA is not available" in running.log
