"""The built-in `drivable` model (TwinLiteNet) reproduces the authors' own outputs.

The reference outputs were made with the authors' PyTorch code and weights on four
scikit-image photos; they are read from ../shared/models/twinlitenet/reference relative to the
repository root (override with $SEG_PERCEPTION_TWINLITENET_DIR). Without them the fidelity
tests skip and say why; the rest runs everywhere.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from seg_perception.apps import segment_offline as offline
from seg_perception.model import load_model
from seg_perception.model.base import denormals_flushed
from seg_perception.model.builtin import builtin_spec
from seg_perception.models.twinlitenet import (DRIVABLE_CLASSES, TWINLITENET_INPUT_SIZE, TwinLiteNet,
                                               combine_heads, load_twinlitenet)

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = Path(os.environ.get("SEG_PERCEPTION_TWINLITENET_DIR",
                                    REPO_ROOT.parent / "shared" / "models" / "twinlitenet")) / "reference"
MAX_ABS_DIFF = 1e-3
MIN_LABEL_AGREEMENT = 0.999

# The photos the references were made from (the motorcycle is the left image of the pair).
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
}


@pytest.fixture(scope="module")
def references() -> dict[str, dict[str, np.ndarray]]:
    files = sorted(REFERENCE_DIR.glob("*.npz"))
    if not files:
        pytest.skip(f"TwinLiteNet reference outputs not found in {REFERENCE_DIR} (they live in the "
                    "project's shared folder beside the repository; set SEG_PERCEPTION_TWINLITENET_DIR)")
    return {f.stem: dict(np.load(f)) for f in files}


@pytest.fixture(scope="module")
def network() -> TwinLiteNet:
    return load_twinlitenet()


def _forward(network: TwinLiteNet, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    torch.set_flush_denormal(True)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        return network(image)


def test_raw_outputs_and_labels_match_the_authors(references: dict[str, dict[str, np.ndarray]],
                                                  network: TwinLiteNet) -> None:
    assert set(references) == set(PHOTOS)
    for name, ref in references.items():
        drivable, lanes = _forward(network, ref["input_rgb"])
        for head, ours in (("drivable_area", drivable), ("lanes", lanes)):
            diff = float(np.abs(ours.numpy() - ref[head]).max())
            assert diff <= MAX_ABS_DIFF, f"{name} {head}: max |diff| {diff:.2e}"
        labels = combine_heads(drivable, lanes).argmax(dim=1)[0].numpy()
        agreement = float((labels == ref["labels"]).mean())
        assert agreement >= MIN_LABEL_AGREEMENT, f"{name}: {agreement:.5f} of the labels agree"


def test_the_references_exercise_every_class(references: dict[str, dict[str, np.ndarray]]) -> None:
    # Otherwise the IoU checks below could pass on empty masks alone.
    counts = np.bincount(np.concatenate([r["labels"].ravel() for r in references.values()]), minlength=3)
    assert counts[1] > 10_000 and counts[2] > 0, counts


def _iou(ours: np.ndarray, theirs: np.ndarray) -> float:
    union = np.logical_or(ours, theirs).sum()
    return 1.0 if union == 0 else float(np.logical_and(ours, theirs).sum() / union)


def test_segment_offline_reproduces_the_authors_labels(references: dict[str, dict[str, np.ndarray]],
                                                       tmp_path: Path) -> None:
    """`segment_offline PHOTOS --model drivable --output-size 640x360` on the original photos."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, load in PHOTOS.items():
        rgb = np.ascontiguousarray(load()[..., :3])
        # The references' input is the photo stretched with cv2's default bilinear resize,
        # which is what the pipeline does for a `stretch` model: the same pixels go in.
        assert np.array_equal(cv2.resize(rgb, TWINLITENET_INPUT_SIZE), references[name]["input_rgb"]), name
        cv2.imwrite(str(photos / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "labels"
    code = offline.main(["segment_offline", str(photos), "--out", str(out), "--model", "drivable",
                         "--output-size", "640x360", "--device", "cpu"])
    assert code == 0
    classes = json.loads((out / "classes.json").read_text())
    assert [c["name"] for c in classes["classes"]] == list(DRIVABLE_CLASSES)
    for name, ref in references.items():
        mask = cv2.imread(str(out / f"{name}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (360, 640)
        drivable_iou = _iou(mask == 1, ref["labels"] == 1)
        lane_iou = _iou(mask == 2, ref["labels"] == 2)
        assert drivable_iou >= 0.95, f"{name}: drivable-area IoU {drivable_iou:.4f}"
        assert lane_iou >= 0.8, f"{name}: lane IoU {lane_iou:.4f}"


def test_combined_labels_follow_the_heads() -> None:
    # Per pixel: (drivable scores, lane scores) -> expected id. Lane wins over drivable area.
    cases = [((0.0, 2.0), (1.0, -1.0), 1), ((0.0, 2.0), (-1.0, 3.0), 2), ((2.0, 0.0), (0.0, 1.0), 2),
             ((1.0, 0.5), (0.3, 0.2), 0), ((0.0, 0.1), (0.0, -5.0), 1)]
    drivable = torch.tensor([c[0] for c in cases]).T.reshape(1, 2, 1, len(cases))
    lanes = torch.tensor([c[1] for c in cases]).T.reshape(1, 2, 1, len(cases))
    scores = combine_heads(drivable, lanes)
    assert scores.shape == (1, 3, 1, len(cases))
    assert scores.argmax(dim=1).flatten().tolist() == [c[2] for c in cases]
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(1, 1, len(cases)))
    p_drivable = torch.softmax(drivable, dim=1)
    p_lane = torch.softmax(lanes, dim=1)
    confidence = scores.amax(dim=1).flatten()
    # The winning head's probability; for background the less sure of the two heads' "no".
    torch.testing.assert_close(confidence[0], p_drivable[0, 1, 0, 0])
    torch.testing.assert_close(confidence[1], p_lane[0, 1, 0, 1])
    torch.testing.assert_close(confidence[3], torch.minimum(p_drivable[0, 0, 0, 3], p_lane[0, 0, 0, 3]))
    assert bool((confidence >= 0.5).all())


def test_builtin_spec_and_aliases() -> None:
    spec = builtin_spec("drivable")
    assert builtin_spec("twinlitenet") == spec
    assert spec.input_size == (640, 360) and spec.resize == "stretch" and spec.color_order == "rgb"
    assert spec.scale == pytest.approx(1 / 255) and spec.mean == (0, 0, 0) and spec.std == (1, 1, 1)
    assert spec.output == "probabilities"
    assert spec.classes.names == ["background", "drivable_area", "lane_line"]
    assert [c.obstacle for c in spec.classes.classes] == [True, False, False]
    assert spec.classes.model_name == "twinlitenet_bdd100k"


def test_inference_flushes_denormals_on_the_running_thread() -> None:
    """Denormal floats make this network ~20x slower on a CPU. Whatever thread runs a forward
    (the node's worker, segment_offline, the bench) must have flush-to-zero on when it does."""
    runtime = load_model("drivable", "cpu", validate=False)
    seen: dict[str, bool] = {}
    module = runtime._module  # type: ignore[attr-defined]
    module.register_forward_hook(lambda *_: seen.update(during=denormals_flushed()))

    def worker() -> None:
        torch.set_flush_denormal(False)  # a thread that never heard of the flag
        seen["before"] = denormals_flushed()
        runtime(torch.zeros(1, 3, 360, 640))
        # ...and gets it back as it was: numpy on this thread keeps IEEE denormals
        seen["after"] = denormals_flushed()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    runtime.close()
    assert seen == {"before": False, "during": True, "after": False}


def test_navigation_configs_use_the_models_class_names() -> None:
    """The semantic layer drops classes it does not know by name: every class of the model must
    be in exactly one class type, drivable_area free and the rest costing; the obstacle cloud
    must hold exactly the non-drivable class, and its layer must keep ground-level points."""
    import yaml

    config = REPO_ROOT / "config"
    names = builtin_spec("drivable").classes.names
    layer = yaml.safe_load((config / "nav2_drivable_semantic_layer.yaml").read_text())
    camera = layer["local_costmap"]["local_costmap"]["ros__parameters"]["semantic_segmentation_layer"]["camera"]
    types = {t: camera[t] for t in camera["class_types"]}
    assigned = [name for spec in types.values() for name in spec["classes"]]
    assert sorted(assigned) == sorted(names)
    cost = {name: (spec["base_cost"], spec["max_cost"]) for spec in types.values() for name in spec["classes"]}
    assert cost["drivable_area"] == (0, 0)
    assert all(low > 0 and high > 0 for name, (low, high) in cost.items() if name != "drivable_area")
    assert cost["background"][1] == 254
    assert all(camera[k].startswith("/segmentation/") for k in ("segmentation_topic", "confidence_topic",
                                                                "labels_topic", "pointcloud_topic"))

    node = yaml.safe_load((config / "segmentation_drivable.yaml").read_text())["/**"]["ros__parameters"]
    defaults = yaml.safe_load((config / "segmentation.yaml").read_text())["/**"]["ros__parameters"]
    assert set(node) - {"obstacle_classes"} <= set(defaults)  # obstacle_classes is commented out there
    assert node["model"] == "drivable" and node["obstacle_classes"] == ["background"]
    assert node["obstacle_classes"] == builtin_spec("drivable").classes.obstacle_names
    obstacle = yaml.safe_load((config / "nav2_drivable_obstacle_layer.yaml").read_text())
    source = obstacle["local_costmap"]["local_costmap"]["ros__parameters"]["non_drivable_layer"]["non_drivable"]
    assert source["topic"] == "/segmentation/obstacle_points" and source["min_obstacle_height"] < 0
    assert source["obstacle_max_range"] == node["max_range"]


def test_the_builtin_form_exports_to_torchscript_and_onnx(tmp_path: Path) -> None:
    """DrivableScores (network + head combination) traces and exports, e.g. for TensorRT; a
    small input keeps this fast (the network is fully convolutional, sides multiples of 8)."""
    import warnings

    import onnxruntime as ort

    from seg_perception.models.twinlitenet import DrivableScores

    module = DrivableScores(load_twinlitenet()).eval()
    image = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        eager = module(image)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, image, check_trace=False)
        torch.onnx.export(module, (image,), str(tmp_path / "drivable.onnx"), opset_version=17,
                          input_names=["input"], output_names=["scores"], dynamo=False)
    with torch.inference_mode():
        torch.testing.assert_close(traced(image), eager)
    session = ort.InferenceSession(str(tmp_path / "drivable.onnx"), providers=["CPUExecutionProvider"])
    exported = session.run(None, {"input": image.numpy()})[0]
    np.testing.assert_allclose(exported, eager.numpy(), atol=1e-4)
    assert eager.shape == (1, 3, 96, 160)
    assert bool((exported.argmax(axis=1) == eager.argmax(dim=1).numpy()).all())
