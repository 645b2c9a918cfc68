"""Real architectures in the real node: a SegFormer-B0 checkpoint folder (19 Cityscapes classes,
random weights, written by save_pretrained at test time) through the installed `export_model`
to ONNX, and a CNN encoder-decoder exported to TorchScript, each run by segmentation_node with
no hand-written description: the mask comes out at the input size from SegFormer's
1/4-resolution logits, class ids are in range, and ClassMap and vision_msgs/LabelInfo carry
the model's class names."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("transformers")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from devtools.architectures import (CITYSCAPES_CLASSES, ENCODER_DECODER_CLASSES,  # noqa: E402
                                    write_segformer_checkpoint)
from devtools.harness import Collector, installed_executable, wait_until  # noqa: E402
from devtools.vision_msgs import read_label_info  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402
from seg_perception.deploy.export import export_model, resolve_source  # noqa: E402
from seg_perception.offline.sources import sample_photo  # noqa: E402

TIMEOUT = 60.0
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple[str, ...]]]:
    work = tmp_path_factory.mktemp("architectures")
    checkpoint = write_segformer_checkpoint(work / "segformer_b0_cityscapes", 128, 96)
    run = subprocess.run([installed_executable("export_model"), str(checkpoint), "--out", str(work / "out")],
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cnn = export_model(resolve_source("devtools.architectures:encoder_decoder"), work / "out", "torchscript")
    return {"segformer": (work / "out" / "segformer_b0_cityscapes.onnx", CITYSCAPES_CLASSES),
            "encoder_decoder": (cnn.model, ENCODER_DECODER_CLASSES)}


def _image(rgb: np.ndarray, sec: int) -> Image:
    msg = Image()
    msg.header.stamp = Time(sec=sec)
    msg.header.frame_id = "camera_optical"
    fill_image(msg, rgb, "rgb8")
    return msg


@pytest.mark.parametrize("arch", ["segformer", "encoder_decoder"])
def test_node_runs_the_export_with_its_class_names(arch: str, exported: dict[str, tuple[Path, tuple[str, ...]]],
                                                   ros: Any, seg_node: Any, vision_msgs_env: dict[str, str]) -> None:
    from seg_perception.msg import ClassMap

    model, names = exported[arch]
    running = seg_node({"model": str(model), "use_depth": False, "warmup_iterations": 1}, env=vision_msgs_env)
    ns = running.namespace
    maps = Collector(ros, [(f"{ns}/segmentation/class_map", ClassMap)], LATCHED)
    masks = Collector(ros, [(f"{ns}/segmentation/mask", Image)])
    publisher = ros.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data)
    try:
        wait_until(lambda: running.proc.poll() is not None or publisher.get_subscription_count() > 0, TIMEOUT,
                   "the node to subscribe to image")
        assert running.proc.poll() is None, running.log
        rgb = cv2.resize(sample_photo("astronaut"), (200, 150), interpolation=cv2.INTER_AREA)
        mask = None
        # Best effort: a frame sent before the node has matched this publisher is lost; resend.
        for sec in range(1, 31):
            msg = _image(rgb, sec)
            publisher.publish(msg)
            try:
                masks.wait_for(lambda m: any(x.header.stamp == msg.header.stamp for _, x in next(iter(m.values()))),
                               2.0, "the mask")
            except TimeoutError:
                continue
            entry = masks.with_stamp(f"{ns}/segmentation/mask", msg.header.stamp)
            assert entry is not None
            mask = entry[1]
            break
        assert mask is not None, running.log
        assert (mask.width, mask.height, mask.encoding, mask.step) == (200, 150, "mono8", 200)
        assert mask.header.frame_id == "camera_optical"
        labels = np.frombuffer(mask.data, np.uint8)
        assert int(labels.max()) < len(names)

        maps.wait_for(lambda m: bool(next(iter(m.values()))), TIMEOUT, "the class map")
        class_map = maps.messages[f"{ns}/segmentation/class_map"][-1][1]
        assert [c.name for c in class_map.classes] == list(names)
        assert class_map.model_name == model.stem
        label_info = read_label_info(f"{ns}/segmentation/label_info", vision_msgs_env)
        assert label_info["classes"] == [[i, name] for i, name in enumerate(names)]
    finally:
        ros.destroy_publisher(publisher)
        for sub in (*maps.subs, *masks.subs):
            ros.destroy_subscription(sub)
