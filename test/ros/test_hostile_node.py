"""segmentation_node under hostile input, as a process over DDS: decompression bombs, damaged JPEGs,
megabyte encodings, absurd parameters, non-finite calibration, clocks that are off, and signals
while frames flow. Each case must cost bounded memory and bounded log output, be reported, and
leave the node serving the next good frame."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

from bench.procstat import status_kib  # noqa: E402
from devtools.harness import Collector, photo, wait_until  # noqa: E402
from devtools.hostile import BAD_K, corrupt_jpeg, png_bomb  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402

TIMEOUT = 30.0
MEMORY_BOUND_MIB = 300.0
"""Peak resident memory a hostile input may add (a decoded 20000x20000 bomb alone is 1144 MiB)."""
LOG_BOUND_BYTES = 16_000
"""Log output a burst of hostile messages may add: a few throttled lines."""



class Diagnostics:
    """The newest diagnostics status `<node name>: <task>` of one node."""

    def __init__(self, ros: Any, node_name: str, task: str = "segmentation") -> None:
        self.status_name = f"{node_name}: {task}"
        self.cond = threading.Condition()
        self.level = -1
        self.message = ""
        self.values: dict[str, str] = {}
        self.sub = ros.create_subscription(DiagnosticArray, "/diagnostics", self._on_msg, QoSProfile(depth=20))

    def _on_msg(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(self.status_name):
                with self.cond:
                    self.level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
                    self.message = status.message
                    self.values = {kv.key: kv.value for kv in status.values}
                    self.cond.notify_all()

    def count(self, key: str) -> int:
        with self.cond:
            return int(self.values.get(key, 0))

    def wait(self, predicate: Any, what: str, timeout: float = TIMEOUT) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self), timeout)
            assert ok, f"diagnostics never showed {what}; last: level {self.level} {self.message!r} {self.values}"


class Node:
    """One running segmentation_node seen from the test: publishers, outputs, diagnostics."""

    def __init__(self, ros: Any, running: Any, outputs: tuple[str, ...] = ("mask",)) -> None:
        self.ros = ros
        self.running = running
        ns = running.namespace
        self.ns = ns
        self.image = ros.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data)
        self.compressed = ros.create_publisher(CompressedImage, f"{ns}/image/compressed", qos_profile_sensor_data)
        self.depth = ros.create_publisher(Image, f"{ns}/depth", qos_profile_sensor_data)
        self.info = ros.create_publisher(CameraInfo, f"{ns}/camera_info", qos_profile_sensor_data)
        self.depth_info = ros.create_publisher(CameraInfo, f"{ns}/depth/camera_info", qos_profile_sensor_data)
        types = {"points": PointCloud2, "obstacle_points": PointCloud2, "camera_info": CameraInfo}
        self.out = Collector(ros, [(f"{ns}/segmentation/{o}", types.get(o, Image)) for o in outputs])
        self.diag = Diagnostics(ros, running.name)
        self.depth_diag = Diagnostics(ros, running.name, "depth")
        self.params = AsyncParameterClient(ros, f"{ns}/{running.name}")

    def topic(self, name: str) -> str:
        return f"{self.ns}/segmentation/{name}"

    def got(self, output: str, stamp: Time) -> bool:
        return self.out.with_stamp(self.topic(output), stamp) is not None

    def serve(self, send: Any, outputs: tuple[str, ...] = ("mask",), timeout: float = TIMEOUT) -> list[Time]:
        """Call ``send(stamp)`` with a fresh real-time stamp until every output of one of them came back
        (best effort: resend). Returns every stamp sent."""
        sent: list[Time] = []

        def answered() -> bool:
            sent.append(self.ros.get_clock().now().to_msg())
            send(sent[-1])
            try:
                self.out.wait_for(lambda _: any(all(self.got(o, s) for o in outputs) for s in sent), 0.7, "outputs")
                return True
            except TimeoutError:
                return False
        wait_until(lambda: self.running.proc.poll() is not None or answered(), timeout, f"{outputs}")
        assert self.running.proc.poll() is None, self.running.log
        return sent

    def rejected_after(self, send: Any, before: int, sec: int) -> None:
        """Send a bad message (resending while best effort loses it) until the node counted a rejection."""
        stamp = Time(sec=sec)
        last = [0.0]

        def counted() -> bool:
            if self.diag.count("rejected_inputs") > before:
                return True
            if time.monotonic() - last[0] > 0.5:
                send(stamp)
                last[0] = time.monotonic()
            return False
        wait_until(counted, TIMEOUT, "the rejection to be counted")

    def set(self, **values: Any) -> Any:
        future = self.params.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(TIMEOUT), "no answer from set_parameters"
        return future.result().results[0]

    @property
    def log_bytes(self) -> int:
        return self.running.log_path.stat().st_size if self.running.log_path.exists() else 0

    def rss_mib(self, key: str = "VmRSS") -> float:
        kib = status_kib(self.running.proc.pid, key)
        assert kib is not None, "node process gone"
        return kib / 1024.0

    def close(self) -> None:
        for pub in (self.image, self.compressed, self.depth, self.info, self.depth_info):
            self.ros.destroy_publisher(pub)
        for sub in (*self.out.subs, self.diag.sub, self.depth_diag.sub):
            self.ros.destroy_subscription(sub)


@pytest.fixture
def node(ros: Any, seg_node: Any) -> Any:
    made: list[Node] = []

    def make(params: dict[str, Any], outputs: tuple[str, ...] = ("mask",)) -> Node:
        running = seg_node({"warmup_iterations": 1, "diagnostics_period": 0.3, **params})
        made.append(Node(ros, running, outputs))
        return made[-1]

    yield make
    for n in made:
        n.close()


def _compressed(fmt: str, payload: bytes, stamp: Time) -> CompressedImage:
    msg = CompressedImage(format=fmt, data=payload)
    msg.header.stamp = stamp
    msg.header.frame_id = "cam"
    return msg


def _raw(rgb: np.ndarray, stamp: Time, encoding: str = "rgb8") -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = "cam"
    fill_image(msg, rgb, "rgb8")
    msg.encoding = encoding
    return msg


def test_compressed_bombs_corrupt_jpegs_and_huge_formats(node: Any) -> None:
    n = node({"use_depth": False, "input_transport": "compressed"})
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(photo(320, 240), cv2.COLOR_RGB2BGR))[1].tobytes()

    def good(stamp: Time) -> None:
        n.compressed.publish(_compressed("rgb8; jpeg compressed bgr8", jpeg, stamp))

    n.serve(good)
    idle_mib = n.rss_mib()
    bomb = png_bomb(20000, 20000)  # 48 KB that decodes to 1.2 GB
    for i in range(3):
        before = n.diag.count("rejected_inputs")
        n.rejected_after(lambda stamp: n.compressed.publish(_compressed("png", bomb, stamp)), before, 100 + i)
    assert "exceeds the limit" in n.running.log
    n.diag.wait(lambda d: d.level == 1 and "rejected" in d.message, "a WARN about rejected inputs")
    n.serve(good)
    peak_added = n.rss_mib("VmHWM") - idle_mib
    assert peak_added < MEMORY_BOUND_MIB, f"bombs raised the peak by {peak_added:.0f} MiB"

    before = n.diag.count("rejected_inputs")
    damaged = corrupt_jpeg(photo(320, 240))
    n.rejected_after(lambda stamp: n.compressed.publish(_compressed("jpeg", damaged, stamp)), before, 200)
    wait_until(lambda: "Corrupt JPEG data" in n.running.log, TIMEOUT, "the corrupt-JPEG reason in the log")
    n.serve(good)

    log_before = n.log_bytes
    before = n.diag.count("rejected_inputs")
    for i in range(30):  # distinct 200 KB format strings, then 1 MB ones
        size = 200_000 if i < 25 else 1_000_000
        n.compressed.publish(_compressed(f"{i}\n" + "x" * size, b"not an image", Time(sec=300 + i)))
    n.rejected_after(lambda stamp: None, before, 0)
    n.serve(good)
    added = n.log_bytes - log_before
    assert added < LOG_BOUND_BYTES, f"30 hostile formats added {added} bytes of log"
    assert n.running.proc.poll() is None


def test_raw_geometry_and_encodings_cost_nothing_and_stay_short(node: Any) -> None:
    n = node({"use_depth": False})
    rgb = photo(160, 120)
    n.serve(lambda stamp: n.image.publish(_raw(rgb, stamp)))
    giant = Image(height=100_000, width=100_000, encoding="rgb8", step=300_000, data=bytes(64))
    before = n.diag.count("rejected_inputs")
    n.rejected_after(lambda stamp: n.image.publish(giant), before, 0)
    wait_until(lambda: "100000x100000 pixels" in n.running.log, TIMEOUT, "the size limit in the log")

    log_before = n.log_bytes
    before = n.diag.count("rejected_inputs")
    for i in range(20):
        n.image.publish(_raw(rgb, Time(sec=50 + i), encoding=f"\x1b[31m{i}" + "e" * 1_000_000))
    n.rejected_after(lambda stamp: None, before, 0)
    n.serve(lambda stamp: n.image.publish(_raw(rgb, stamp)))
    added = n.log_bytes - log_before
    assert added < LOG_BOUND_BYTES, f"20 one-megabyte encodings added {added} bytes of log"
    assert "\x1b[31m" not in n.running.log


def test_absurd_parameters_are_refused_with_a_reason(node: Any) -> None:
    n = node({"use_depth": False})
    rgb = photo(160, 120)
    n.serve(lambda stamp: n.image.publish(_raw(rgb, stamp)))
    for values, fragment in [
        ({"voxel_size": 1e-20}, "voxel_size"),
        ({"output_size": "99999999999999999999x1"}, "output_size"),
        ({"output_size": "8000x8000"}, "max_image_pixels"),
        ({"max_image_pixels": 0}, "max_image_pixels"),
        ({"min_range": float("nan")}, "min_range"),
    ]:
        result = n.set(**values)
        assert not result.successful, values
        assert fragment in result.reason, (values, result.reason)
    assert n.set(output_size="80x60").successful
    sent = n.serve(lambda stamp: n.image.publish(_raw(rgb, stamp)))
    mask = next(m for s in sent if (m := n.out.with_stamp(n.topic("mask"), s)) is not None)[1]
    assert (mask.width, mask.height) == (80, 60)


def test_non_finite_depth_calibration_is_refused_not_turned_into_an_empty_cloud(node: Any) -> None:
    n = node({"use_depth": True, "depth_wait": 0.3}, outputs=("mask", "obstacle_points", "points"))
    rgb = photo(160, 120)
    depth_mm = np.full((120, 160), 2000, np.uint16)
    good_k = [120.0, 0.0, 79.5, 0.0, 120.0, 59.5, 0.0, 0.0, 1.0]

    def frame(k: list[float]) -> Any:
        def send(stamp: Time) -> None:
            info = CameraInfo(width=160, height=120, k=k)
            info.header.stamp = stamp
            info.header.frame_id = "cam"
            depth = Image()
            depth.header = info.header
            fill_image(depth, depth_mm, "16UC1")
            n.depth_info.publish(info)
            n.depth.publish(depth)
            n.image.publish(_raw(rgb, stamp))
        return send

    n.serve(frame(good_k), ("mask", "obstacle_points", "points"))
    bad_stamps: dict[str, list[Time]] = {}
    for i, name in enumerate(("nan_center", "huge_center", "inf_focal")):
        bad_stamps[name] = n.serve(frame(BAD_K[name]))
        n.depth_diag.wait(lambda d: d.level == 1 and "depth/camera_info" in d.message
                          and d.count("depth_calibration_errors") > i, f"a WARN for {name}")
    assert "depth/camera_info" in n.running.log
    # Frames whose mask is back were processed with the broken calibration (a resent one still in
    # flight may meet the good calibration sent next, and rightly get a cloud).
    processed = {name: [s for s in stamps if n.got("mask", s)] for name, stamps in bad_stamps.items()}
    n.serve(frame(good_k), ("mask", "obstacle_points", "points"))
    # Clouds come in frame order: had a broken calibration given one, it would be here by now.
    for name, stamps in processed.items():
        assert not any(n.got("obstacle_points", s) for s in stamps), f"{name}: a cloud from a broken calibration"
        assert not any(n.got("points", s) for s in stamps), name
    n.depth_diag.wait(lambda d: d.level == 0, "the calibration WARN to clear")
    assert n.diag.level == 0, n.diag.message  # a depth fault never changes the segmentation status


def test_clock_problems_are_counted_and_kept_out_of_latency(ros: Any, node: Any) -> None:
    n = node({"use_depth": False})
    rgb = photo(160, 120)

    def now_plus(seconds: float) -> Any:
        def send(_stamp: Time) -> None:
            stamp = ros.get_clock().now().to_msg()
            stamp.sec += int(seconds)
            msg = _raw(rgb, stamp)
            n.image.publish(msg)
            sent.append(stamp)
        return send

    sent: list[Time] = []
    wait_until(lambda: now_plus(0)(Time()) or any(n.got("mask", s) for s in sent), TIMEOUT, "a first mask")
    sent.clear()
    wait_until(lambda: now_plus(10**6)(Time()) or any(n.got("mask", s) for s in sent), TIMEOUT, "a future frame")
    n.diag.wait(lambda d: d.count("clock_problems") >= 1 and d.level == 1 and "clock" in d.message,
                "the future stamp as a clock problem")
    assert float(n.diag.values["latency_max_ms"]) < 60_000, n.diag.values
    sent.clear()
    wait_until(lambda: now_plus(0)(Time()) or any(n.got("mask", s) for s in sent), TIMEOUT, "a sane frame")
    n.diag.wait(lambda d: "clock" not in d.message, "the clock WARN to clear with a sane stamp")


# A camera + subscriber of every image output, in its own process so that, once it and the node
# have exited, nothing alive holds a shared-memory file of theirs.
LOAD_SCRIPT = r"""
import sys
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

ns = sys.argv[1]
rclpy.init()
node = rclpy.create_node("hostile_load")
pub = node.create_publisher(Image, ns + "/image", qos_profile_sensor_data)
masks = [0]

def on_mask(_msg):
    masks[0] += 1
    if masks[0] == 5:
        print("flowing", flush=True)

subs = [node.create_subscription(Image, ns + "/segmentation/" + out, on_mask if out == "mask" else (lambda _m: None),
                                 QoSProfile(depth=5)) for out in ("mask", "confidence", "color_mask", "overlay")]
image = Image(height=480, width=640, encoding="rgb8", step=1920)
image.data = np.random.default_rng(0).integers(0, 256, 480 * 1920, dtype=np.uint8).tobytes()

def tick():
    image.header.stamp = node.get_clock().now().to_msg()
    pub.publish(image)

node.create_timer(1 / 30, tick)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
finally:
    node.destroy_node()
    rclpy.try_shutdown()
"""


def _shm_mapped(pid: int | None = None) -> set[str]:
    """/dev/shm files mapped by process `pid` (every process when None)."""
    mapped: set[str] = set()
    for maps in Path("/proc").glob(f"{pid if pid is not None else '[0-9]*'}/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue
        mapped.update(line.split("/dev/shm/")[1].split()[0] for line in text.splitlines() if "/dev/shm/" in line)
    return mapped


def _left_behind(used: set[str]) -> set[str]:
    """Files among `used` (and their lock files) still in /dev/shm that no live process maps.

    Other sessions on this machine create and abandon Fast DDS files at any time, so only files
    the node and the load process were seen using count.
    """
    present = set(os.listdir("/dev/shm"))
    mapped = _shm_mapped()
    # Fast DDS 2.x (Jazzy) keeps its port segments (fastrtps_portNNNN) for the next participant on
    # that port by design; Fast DDS 3 (Kilted) removes them. Only the node's own segments count.
    files = {f for name in used if not name.startswith("fastrtps_port")
             for f in (name, f"{name}_el", f"sem.{name}_mutex")}
    return {f for f in files & present if f.removesuffix("_el").removeprefix("sem.").removesuffix("_mutex") not in mapped}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_under_load_exits_cleanly(seg_node: Any, signum: int) -> None:
    # A domain of its own (test.sh draws 101..200): the test process's participant must not hold
    # the node's files open.
    env = {"ROS_DOMAIN_ID": str(201 + os.getpid() % 30)}
    running = seg_node({"use_depth": False, "warmup_iterations": 1}, env=env)
    load = subprocess.Popen([sys.executable, "-c", LOAD_SCRIPT, running.namespace], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(load.stdout or []), daemon=True)
    reader.start()
    try:
        wait_until(lambda: "flowing\n" in lines or load.poll() is not None or running.proc.poll() is not None,
                   TIMEOUT * 2, "masks flowing to the load process")
        assert "flowing\n" in lines, ("".join(lines), running.log[-2000:])
        # Fast DDS 3 (Kilted) names its segments fastdds_*, Fast DDS 2.14 (Jazzy) fastrtps_*.
        used = {f for f in _shm_mapped(running.proc.pid) | _shm_mapped(load.pid) if "fastdds" in f or "fastrtps" in f}
        assert used, "the node maps no Fast DDS shared memory: is the shared-memory transport off?"
        running.proc.send_signal(signum)
        code = running.proc.wait(TIMEOUT)
    finally:
        load.send_signal(signal.SIGINT)
        load_code = load.wait(TIMEOUT)
        reader.join(TIMEOUT)
    log = running.log
    assert code == 0, log[-2000:]
    assert load_code == 0, "".join(lines)
    bad = [line for line in log.splitlines() if "[ERROR]" in line or "Traceback" in line or "RCLError" in line]
    assert not bad, bad
    leftover = _left_behind(used)
    assert not leftover, f"shared memory left behind: {sorted(leftover)}"


VGA = 640 * 480


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_lowered_max_image_pixels_rejects_png_jpeg_and_raw_frames_above_it(node: Any, transport: str) -> None:
    """max_image_pixels holds at any value, not only the default: frames above a limit set to VGA
    are refused and counted before they are decoded, and nothing above the limit is published."""
    compressed = transport == "compressed"
    n = node({"use_depth": False, "input_transport": transport, "max_image_pixels": VGA})
    small, big = photo(320, 240), photo(1280, 960)  # 1280x960 = 4x the limit
    bgr = cv2.cvtColor(big, cv2.COLOR_RGB2BGR)
    if compressed:
        def good(stamp: Time) -> None:
            n.compressed.publish(_compressed("jpeg", cv2.imencode(".jpg", small)[1].tobytes(), stamp))
        bad = [_compressed("png", cv2.imencode(".png", bgr)[1].tobytes(), Time()),
               _compressed("jpeg", cv2.imencode(".jpg", bgr)[1].tobytes(), Time())]
    else:
        def good(stamp: Time) -> None:
            n.image.publish(_raw(small, stamp))
        bad = [_raw(big, Time())]
    publisher = n.compressed if compressed else n.image
    n.serve(good)
    for i, msg in enumerate(bad):
        before = n.diag.count("rejected_inputs")

        def send(stamp: Time, msg: Any = msg) -> None:
            msg.header.stamp = stamp
            publisher.publish(msg)
        n.rejected_after(send, before, 400 + i)
        assert not n.got("mask", Time(sec=400 + i)), "a frame above max_image_pixels was segmented"
    assert f"exceeds the limit of {VGA} pixels" in n.running.log
    assert "1280x960" in n.running.log
    n.serve(good)
    with n.out.cond:
        sizes = {(m.width, m.height) for _, m in n.out.messages[n.topic("mask")]}
    assert sizes == {(320, 240)}, f"masks above the limit were published: {sizes}"


def test_a_silent_camera_and_a_camera_of_rejected_frames_are_named(ros: Any, node: Any) -> None:
    """Of two cameras, one sends nothing: WARN naming it, never OK. Then it sends only frames of an
    unknown encoding: WARN naming it and the reason, not the model."""
    n = node({"use_depth": False, "cameras": ["front", "rear"]}, outputs=())
    front = ros.create_publisher(Image, f"{n.ns}/front/image", qos_profile_sensor_data)
    rear = ros.create_publisher(Image, f"{n.ns}/rear/image", qos_profile_sensor_data)
    rgb = photo(160, 120)
    try:
        def both_sent(d: Any) -> bool:
            front.publish(_raw(rgb, ros.get_clock().now().to_msg()))
            return d.count("front.frames_out") > 0 and d.level == 1 and "camera 'rear'" in d.message
        n.diag.wait(both_sent, "a WARN naming the silent camera")
        assert "no image received" in n.diag.message

        def rejected(d: Any) -> bool:
            stamp = ros.get_clock().now().to_msg()
            front.publish(_raw(rgb, stamp))
            rear.publish(_raw(rgb, stamp, encoding="rgb16"))
            return d.count("rear.rejected_frames") > 0 and "none of" in d.message
        n.diag.wait(rejected, "a WARN naming the camera whose frames are all rejected")
        assert n.diag.level == 1
        assert "camera 'rear'" in n.diag.message and "rgb16" in n.diag.message, n.diag.message
        assert "too slow" not in n.diag.message
    finally:
        ros.destroy_publisher(front)
        ros.destroy_publisher(rear)


def test_a_hung_triton_server_blocks_neither_deactivate_nor_diagnostics_nor_exit(ros: Any, node: Any) -> None:
    """A server that accepts and never answers holds a model call for all of triton_timeout (30 s
    here). Deactivate must still answer within about a second, /diagnostics must keep coming
    meanwhile (the bond heartbeat shares that executor) and SIGINT must end the process at once.
    Before: deactivate 26 s with no /diagnostics, Ctrl-C 24 s."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    from devtools.harness import call_service
    from devtools.hostile import SilentServer

    server = SilentServer()  # bound, not listening yet: the load finds nobody (fast) and goes on
    try:
        n = node({"use_depth": False, "model": f"triton://127.0.0.1:{server.port}/selfie", "triton_timeout": 30.0})
        n.diag.wait(lambda d: d.level >= 0, "a first diagnostics status")
        server.start()
        rgb = photo(160, 120)

        def engine_held() -> bool:
            n.image.publish(_raw(rgb, ros.get_clock().now().to_msg()))
            return server.accepted > 0
        wait_until(engine_held, TIMEOUT, "the node to call the silent server")
        sent = n.diag.count("frames_in")
        wait_until(lambda: n.diag.count("frames_in") > sent, TIMEOUT, "a frame to reach the node")

        start = time.monotonic()
        reply = call_service(ros, ChangeState, f"{n.ns}/{n.running.name}/change_state",
                             ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        took = time.monotonic() - start
        assert reply.success, n.running.log[-2000:]
        assert took < 5.0, f"deactivate took {took:.1f} s while the server hung"
        print(f"deactivate with a hung server: {took:.2f} s")
        n.diag.wait(lambda d: d.message == "inactive", "diagnostics while the model call hangs", timeout=5.0)
        assert "still in a model call" in n.running.log

        start = time.monotonic()
        n.running.proc.send_signal(signal.SIGINT)
        code = n.running.proc.wait(TIMEOUT)
        took = time.monotonic() - start
        assert code == 0, n.running.log[-2000:]
        assert took < 5.0, f"SIGINT took {took:.1f} s while the server hung"
        print(f"SIGINT with a hung server: {took:.2f} s")
    finally:
        server.close()


def test_sigint_while_configure_waits_on_a_hung_server_exits_at_once(seg_node: Any) -> None:
    """Autostart's configure loads a triton:// model from a server that accepts and never answers;
    Ctrl-C must end the process now, not after the load's calls time out (before: 10.4 s)."""
    from devtools.hostile import SilentServer

    server = SilentServer().start()
    try:
        running = seg_node({"use_depth": False, "model": f"triton://127.0.0.1:{server.port}/selfie",
                            "triton_timeout": 30.0, "warmup_iterations": 1})
        wait_until(lambda: server.accepted > 0 or running.proc.poll() is not None, TIMEOUT,
                   "the load to reach the silent server")
        start = time.monotonic()
        running.proc.send_signal(signal.SIGINT)
        code = running.proc.wait(TIMEOUT)
        took = time.monotonic() - start
        assert code == 0, running.log[-2000:]
        assert took < 5.0, f"SIGINT during configure took {took:.1f} s"
        assert "interrupted" in running.log
    finally:
        server.close()
