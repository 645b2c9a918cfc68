"""Scaling: several cameras through one node, and nodes sharing one real Triton server
(serve_triton): masks equal local inference; the server crashes, the nodes stay up and say so;
the server comes back and masks resume by themselves.

One server start and one restart for the whole file: each costs seconds on 2 shared cores.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("tritonclient.grpc")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from devtools.harness import Collector, image_msg, photo, wait_until  # noqa: E402
from devtools.triton import TritonServer  # noqa: E402
from seg_perception.ros import qos  # noqa: E402
from seg_perception.engine.pipeline import SegmentationPipeline  # noqa: E402
from seg_perception.model import load_model  # noqa: E402
from seg_perception.model.base import RuntimeUnavailable, runtime_health  # noqa: E402
from seg_perception.model.runtimes.triton import TritonOptions  # noqa: E402

TIMEOUT = 60.0
LATCHED = qos.LATCHED




def mask_array(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)


class Camera:
    """One camera's topics under `prefix` (a node namespace and/or a camera name), from the test node."""

    def __init__(self, ros: Any, prefix: str) -> None:
        self.prefix = prefix
        self.image_pub = ros.create_publisher(Image, f"{prefix}/image", qos_profile_sensor_data)
        self.mask_topic = f"{prefix}/segmentation/mask"
        self.out = Collector(ros, [(self.mask_topic, Image)])

    @property
    def masks(self) -> list[Image]:
        with self.out.cond:
            return [m for _, m in self.out.messages[self.mask_topic]]

    def wait_ready(self, proc: Any, log: Any) -> None:
        wait_until(lambda: proc.poll() is not None or self.image_pub.get_subscription_count() > 0,
                   TIMEOUT, f"a subscriber on {self.prefix}/image")
        assert proc.poll() is None, log()
        # A best-effort frame sent before the node has matched us is lost: handshake until a
        # mask comes back, so every later single publish is heard.
        probe = image_msg(photo(64, 48), 0, 1)
        wait_until(lambda: self._probe(probe), TIMEOUT, f"a first mask on {self.mask_topic}")
        self.out.clear()

    def _probe(self, probe: Image) -> bool:
        self.image_pub.publish(probe)
        try:
            self.out.wait_for(lambda m: any(x.header.stamp == probe.header.stamp for _, x in m[self.mask_topic]),
                              0.5, "probe")
            return True
        except TimeoutError:
            return False

    def send_and_wait(self, msg: Image) -> Image:
        self.image_pub.publish(msg)
        stamp = msg.header.stamp
        self.out.wait_for(lambda m: any(x.header.stamp == stamp for _, x in m[self.mask_topic]), TIMEOUT,
                          f"a mask on {self.mask_topic} for stamp {stamp.sec}")
        found = self.out.with_stamp(self.mask_topic, stamp)
        assert found is not None
        return found[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    log = tmp_path_factory.mktemp("triton") / "serve_triton.log"
    triton = TritonServer("selfie", log_path=log, extra=["--max-batch", "4", "--allow-shared-memory",
                                                                  "--allow-statistics"]).start()
    try:
        triton.wait_ready()
        yield triton
    finally:
        triton.stop()


def test_two_cameras_through_one_node(ros: Any, seg_node: Any) -> None:
    from seg_perception.msg import ClassMap

    running = seg_node({"cameras": ["front", "rear/left"], "use_depth": False})
    cameras = {name: Camera(ros, f"{running.namespace}/{name}") for name in ("front", "rear/left")}
    class_maps = Collector(ros, [(f"{running.namespace}/{name}/segmentation/class_map", ClassMap)
                                 for name in cameras], LATCHED)
    diag = diagnostics(ros)
    for camera in cameras.values():
        camera.wait_ready(running.proc, lambda: running.log)
    local = SegmentationPipeline(load_model("selfie", "cpu"))
    frames = {"front": (photo(320, 240), 11, "front_optical"), "rear/left": (photo(160, 96), 12, "rear_optical")}
    # Both published back to back: the engine takes them together when it is free.
    for name, (rgb, sec, frame_id) in frames.items():
        cameras[name].image_pub.publish(image_msg(rgb, sec, 5, frame_id))
    for name, (rgb, sec, frame_id) in frames.items():
        cam = cameras[name]
        cam.out.wait_for(lambda m, c=cam, s=sec: any(x.header.stamp.sec == s for _, x in m[c.mask_topic]),
                         TIMEOUT, f"{name}'s mask")
        got = next(m for m in cam.masks if m.header.stamp.sec == sec)
        assert (got.header.stamp.nanosec, got.header.frame_id) == (5, frame_id)
        assert (got.width, got.height, got.step, got.encoding) == (rgb.shape[1], rgb.shape[0], rgb.shape[1], "mono8")
        assert np.array_equal(mask_array(got), local(rgb).labels)
        # Each camera hears only its own frames.
        assert not any(m.header.frame_id != frame_id and m.header.stamp.sec in (11, 12) for m in cam.masks)
    class_maps.wait_for(lambda m: all(m.values()), TIMEOUT, "a class map per camera")

    def counters_seen() -> bool:
        for status in node_status(diag, running.name)[::-1]:
            values = {kv.key: kv.value for kv in status.values}
            if "front.frames_out" in values:
                return int(values["front.frames_out"]) >= 2 and int(values["rear/left.frames_out"]) >= 2
        return False

    wait_until(counters_seen, TIMEOUT, "per-camera counters in diagnostics")


def test_two_cameras_through_one_node_batch_on_the_triton_server(
        ros: Any, seg_node: Any, server: TritonServer) -> None:
    """The server's own statistics show batches (fewer executions than inferences) from one node
    serving two cameras; every mask equals local inference."""
    running = seg_node({"model": server.model_uri, "cameras": ["front", "rear"], "use_depth": False})
    cameras = {name: Camera(ros, f"{running.namespace}/{name}") for name in ("front", "rear")}
    for camera in cameras.values():
        camera.wait_ready(running.proc, lambda: running.log)
    local = SegmentationPipeline(load_model("selfie", "cpu"))
    images = {"front": photo(320, 240), "rear": photo(160, 96)}
    expected = {name: local(rgb).labels for name, rgb in images.items()}
    inferences0, executions0 = server.statistics()
    stamp = [600]

    def batched() -> bool:
        # Both cameras back to back: while the engine runs one pair, the next pair waits in the slots.
        stamp[0] += 1
        for name, rgb in images.items():
            cameras[name].image_pub.publish(image_msg(rgb, stamp[0], 0, f"{name}_optical"))
        inferences, executions = server.statistics()
        return inferences - inferences0 >= 6 and executions - executions0 < inferences - inferences0

    wait_until(batched, TIMEOUT, "fewer executions than inferences in the server's statistics")
    inferences, executions = server.statistics()
    print(f"[triton batching] {inferences - inferences0} inferences in {executions - executions0} executions")
    for name, camera in cameras.items():
        masks = [m for m in camera.masks if m.header.stamp.sec > 600]
        assert masks, f"no mask on {camera.mask_topic}"
        for got in masks:
            assert got.header.frame_id == f"{name}_optical"
            assert np.array_equal(mask_array(got), expected[name])


def diagnostics(ros: Any) -> Collector:
    return Collector(ros, [("/diagnostics", DiagnosticArray)], QoSProfile(depth=100))


def node_status(diag: Collector, node_name: str) -> list[DiagnosticStatus]:
    with diag.cond:
        return [s for _, m in diag.messages["/diagnostics"] for s in m.status if node_name in s.name]


def test_nodes_share_a_triton_server_survive_its_crash_and_recover(
        ros: Any, seg_node: Any, server: TritonServer, tmp_path: Path) -> None:
    rgb = photo(320, 240)
    local = SegmentationPipeline(load_model("selfie", "cpu"))(rgb)

    # The runtime itself, through shared memory (the server runs on this machine).
    runtime = load_model(server.model_uri, "cpu", triton=TritonOptions(shared_memory=True, timeout_s=10.0))
    remote = SegmentationPipeline(runtime)(rgb)
    assert np.array_equal(remote.labels, local.labels)
    batch = torch.rand(3, 3, runtime.spec.input_height, runtime.spec.input_width)
    assert torch.allclose(runtime(batch), load_model("selfie", "cpu")(batch), atol=1e-5)  # batched request

    params = {"model": server.model_uri, "use_depth": False}
    nodes = [seg_node(params), seg_node(params)]
    sessions = [Camera(ros, running.namespace) for running in nodes]
    diag = diagnostics(ros)
    for session, running in zip(sessions, nodes):
        session.wait_ready(running.proc, lambda: running.log)
    for index, session in enumerate(sessions):
        got = session.send_and_wait(image_msg(rgb, 100 + index, 7, "cam_optical"))
        assert (got.header.stamp.sec, got.header.stamp.nanosec, got.header.frame_id) == (100 + index, 7, "cam_optical")
        assert np.array_equal(mask_array(got), local.labels)

    server.kill()
    with pytest.raises(RuntimeUnavailable, match=server.url):
        runtime(batch)
    health = runtime_health(runtime)
    assert health is not None and not health.ok

    # Frames keep coming while the server is gone: no masks, the nodes live and report it.
    stamp = [200]

    def publish_round() -> None:
        stamp[0] += 1
        for session in sessions:
            session.image_pub.publish(image_msg(rgb, stamp[0]))

    def server_error_reported() -> bool:
        publish_round()
        return all(any(s.level == DiagnosticStatus.ERROR and server.url in s.message
                       for s in node_status(diag, running.name)) for running in nodes)

    wait_until(server_error_reported, TIMEOUT, "diagnostics ERROR naming the Triton server")
    assert all(running.proc.poll() is None for running in nodes), nodes[0].log

    server.start().wait_ready()
    for session in sessions:
        session.out.clear()

    def masks_back() -> bool:
        publish_round()
        return all(session.masks for session in sessions)

    wait_until(masks_back, TIMEOUT, "masks after the server restarted")
    for index, session in enumerate(sessions):
        assert np.array_equal(mask_array(session.send_and_wait(image_msg(rgb, 300 + index))), local.labels)

    def back_to_ok() -> bool:
        # Frames keep coming. Their 1970 stamps make the latency check WARN: what must be gone is
        # the ERROR, and the server must be reported connected.
        publish_round()
        latest = [node_status(diag, r.name)[-1] for r in nodes]
        return all(s.level != DiagnosticStatus.ERROR and any(kv.key == "inference_server" and "connected" in kv.value
                                                             for kv in s.values) for s in latest)

    wait_until(back_to_ok, TIMEOUT, "diagnostics without the ERROR again")
    for running in nodes:  # the start-up log names what runs the model; the return is logged
        assert f"run by the Triton server {server.url}" in running.log, running.log[-3000:]
        wait_until(lambda: "inference server back after" in running.log, TIMEOUT, "the recovery in the node's log")
    # The runtime reconnects by itself too, shared memory re-registered with the new server.
    wait_until(lambda: _answers(runtime, batch), TIMEOUT, "the runtime to reconnect")
    runtime.close()


def _answers(runtime: Any, batch: torch.Tensor) -> bool:
    try:
        runtime(batch)
        return True
    except RuntimeUnavailable:
        return False



def make_certificates(directory: Path) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for localhost signed by it: (ca, cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make test certificates")
    ca_key, ca, key, csr, cert = (str(directory / n) for n in ("ca.key", "ca.pem", "server.key", "server.csr",
                                                                "server.pem"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    quiet = {"check": True, "capture_output": True}
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
                    "-days", "1", "-subj", "/CN=seg_perception test CA"], **quiet)
    subprocess.run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=localhost"], **quiet)
    subprocess.run([openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "1", "-extfile", str(ext)], **quiet)
    return ca, cert, key


def test_triton_over_tls(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    triton = TritonServer("selfie", log_path=tmp_path / "serve_triton.log", tls_root=ca,
                          extra=["--tls-cert", cert, "--tls-key", key]).start()
    try:
        triton.wait_ready()
        uri = f"triton://localhost:{triton.grpc_port}/selfie"
        rgb = photo(160, 120)
        secured = load_model(uri, "cpu", triton=TritonOptions(ssl=True, root_certificates=ca, timeout_s=10.0))
        assert np.array_equal(SegmentationPipeline(secured)(rgb).labels,
                              SegmentationPipeline(load_model("selfie", "cpu"))(rgb).labels)
        plain = load_model(uri, "cpu", triton=TritonOptions(timeout_s=5.0))  # no TLS: refused
        health = runtime_health(plain)
        assert health is not None and not health.ok
        secured.close()
        plain.close()
    finally:
        triton.stop()
