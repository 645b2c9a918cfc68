"""Model output -> label map + confidence: every output kind, the confidence threshold, nearest
resampling of ids, bilinear resampling of a binary probability, and the numpy and torch
backends agreeing. References are computed here with numpy / plain torch ops."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_perception.engine.geometry import Placement
from seg_perception.model.labels import UNLABELED, ClassMap
from seg_perception.engine.postprocess import NetworkMaps, finish_numpy, finish_torch, network_maps
from seg_perception.model.base import ModelSpec

DEVICES = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def _spec(output: str, n_classes: int = 3, net: tuple[int, int] = (64, 48), resize: str = "stretch") -> ModelSpec:
    classes = ClassMap.from_names(["background", "person"] if output in ("sigmoid", "binary_logits")
                                  else [f"c{i}" for i in range(n_classes)])
    return ModelSpec("t", net[0], net[1], classes, output=output, resize=resize)  # type: ignore[arg-type]


def _smooth(rng: np.random.Generator, channels: int, h: int, w: int, amplitude: float = 4.0) -> torch.Tensor:
    """Smooth random maps (1, C, h, w): coarse noise upsampled, like a real network's scores."""
    shape = (1, channels, max(h // 8, 2), max(w // 8, 2))
    coarse = torch.from_numpy(rng.normal(0, amplitude, shape).astype(np.float32))
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


def _warp_position_step() -> float:
    """Resolution of cv2.warpAffine's bilinear sample positions, in grid pixels: OpenCV 4.6
    (stock Jazzy) rounds them to 1/32 px (INTER_BITS = 5); newer releases use the exact position.
    Probed, not guessed from the version: shift a 0 -> 255 step by 0.01 px."""
    step = np.array([[0, 255, 255]], np.uint8)
    shift = np.array([[1.0, 0.0, 0.01], [0.0, 1.0, 0.0]])
    value = cv2.warpAffine(step, shift, (1, 1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)[0, 0]
    return 0.0 if value == 3 else 1.0 / 32.0  # round(2.55) vs the position rounded to 0


WARP_POSITION_STEP = _warp_position_step()


def _warp_slack(prob: np.ndarray, policy: str) -> float:
    """Extra error (LSB) a quantized warp position adds: half a step times the steepest slope."""
    if policy != "letterbox" or WARP_POSITION_STEP == 0.0:
        return 0.0
    g = prob.astype(np.float64)
    slope = np.abs(np.diff(g, axis=1)).max(initial=0) + np.abs(np.diff(g, axis=0)).max(initial=0)
    return WARP_POSITION_STEP / 2 * slope


def _u8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _place(policy: str, src: tuple[int, int], net: tuple[int, int]) -> Placement:
    return Placement.for_policy(policy, src[0], src[1], net[0], net[1])


# network_maps: each output kind ---------------------------------------------------------

def test_logits_softmax_argmax_confidence() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, (1, 4, 6, 7)).astype(np.float32)
    maps = network_maps(torch.from_numpy(x), _spec("logits", 4))
    e = np.exp(x[0] - x[0].max(axis=0))
    p = e / e.sum(axis=0)
    assert maps.kind == "labels" and maps.probability is None
    assert maps.labels is not None and maps.confidence is not None
    assert maps.labels.dtype == torch.uint8 and maps.confidence.dtype == torch.uint8
    np.testing.assert_array_equal(maps.labels.numpy(), p.argmax(axis=0))
    assert np.abs(maps.confidence.numpy().astype(int) - _u8(p.max(axis=0)).astype(int)).max() <= 1


def test_probabilities_taken_as_they_are() -> None:
    p = np.array([[[0.7, 0.1], [0.2, 0.5]],
                  [[0.2, 0.1], [0.3, 0.45]],
                  [[0.1, 0.8], [0.5, 0.05]]], np.float32)[None]
    maps = network_maps(torch.from_numpy(p), _spec("probabilities", 3))
    assert maps.labels is not None and maps.confidence is not None
    np.testing.assert_array_equal(maps.labels.numpy(), [[0, 2], [2, 0]])
    # round(255 * 0.7) = 179 (178.5), 0.8 -> 204, 0.5 -> 128 (127.5), 0.5 -> 128
    np.testing.assert_array_equal(maps.confidence.numpy(), _u8(np.array([[0.7, 0.8], [0.5, 0.5]])))


def test_sigmoid_is_the_person_probability() -> None:
    p = np.array([[0.0, 0.25, 0.5, 0.75, 1.0, 0.999]], np.float32)
    maps = network_maps(torch.from_numpy(p)[None, None], _spec("sigmoid"))
    assert maps.kind == "binary" and maps.labels is None and maps.probability is not None
    np.testing.assert_array_equal(maps.probability.numpy(), _u8(p))


def test_binary_logits_take_the_sigmoid() -> None:
    x = np.array([[-20.0, -1.0, 0.0, 0.3, 2.0, 20.0]], np.float32)
    maps = network_maps(torch.from_numpy(x)[None, None], _spec("binary_logits"))
    assert maps.probability is not None
    np.testing.assert_array_equal(maps.probability.numpy(), _u8(1.0 / (1.0 + np.exp(-x))))


@pytest.mark.parametrize("shape, dtype", [((1, 1, 3, 4), torch.int64), ((1, 3, 4), torch.int32),
                                          ((1, 1, 3, 4), torch.uint8)])
def test_label_outputs(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    ids = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 2, 1]])
    maps = network_maps(torch.from_numpy(ids).to(dtype).reshape(shape), _spec("labels"))
    assert maps.labels is not None and maps.confidence is not None
    np.testing.assert_array_equal(maps.labels.numpy(), ids)
    assert maps.confidence.dtype == torch.uint8
    assert (maps.confidence.numpy() == 255).all()


@pytest.mark.parametrize("kind, channels", [("logits", 5), ("logits", 2), ("probabilities", 3), ("sigmoid", 1),
                                            ("binary_logits", 1), ("labels", 1)])
def test_numpy_output_gives_the_same_maps_as_a_tensor(kind: str, channels: int) -> None:
    """An array_io runtime (ONNX on the CPU) hands numpy to network_maps; no torch is involved
    and the maps equal the torch path's (confidence within one uint8 step)."""
    rng = np.random.default_rng(channels)
    if kind == "labels":
        raw = rng.integers(0, 3, (1, 1, 9, 700)).astype(np.int64)
    elif kind in ("probabilities", "sigmoid"):
        raw = rng.dirichlet(np.ones(channels), (9, 700)).transpose(2, 0, 1)[None].astype(np.float32)
        raw = raw[:, :1] if kind == "sigmoid" else raw
    else:
        raw = rng.normal(0, 8, (1, channels, 9, 700)).astype(np.float32)  # wide: past OpenCV's channel limit
    spec = _spec(kind, 3 if kind in ("labels", "probabilities") else channels)
    ours, theirs = network_maps(raw, spec), network_maps(torch.from_numpy(raw), spec)
    assert ours.kind == theirs.kind
    for name in ("labels", "confidence", "probability"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == tuple(b.shape)
            assert np.abs(a.astype(int) - b.numpy().astype(int)).max() <= (0 if name == "labels" else 1)


# finish at network size: binary decision, threshold ----------------------------------------

FINISHERS = [pytest.param(finish_numpy, id="numpy"), pytest.param(finish_torch, id="torch")]


def _np(t: np.ndarray | torch.Tensor) -> np.ndarray:
    return t.cpu().numpy() if isinstance(t, torch.Tensor) else t


@pytest.mark.parametrize("finish", FINISHERS)
def test_binary_decision_and_confidence(finish: object) -> None:
    prob = np.array([[0, 1, 127, 128, 129, 254, 255, 200]], np.uint8)
    maps = NetworkMaps("binary", None, None, torch.from_numpy(prob))
    place = _place("stretch", (8, 1), (8, 1))
    labels, conf = finish(maps, place, 8, 1, 0.0)  # type: ignore[operator]
    # p > 0.5 <=> u8 >= 128; confidence is the winner's probability.
    np.testing.assert_array_equal(_np(labels), [[0, 0, 0, 1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(_np(conf), [[255, 254, 128, 128, 129, 254, 255, 200]])
    assert _np(labels).dtype == np.uint8 and _np(conf).dtype == np.uint8


@pytest.mark.parametrize("finish", FINISHERS)
@pytest.mark.parametrize("threshold, keep_from", [(0.0, 0), (0.5, 128), (0.6, 153), (0.9, 230), (1.0, 255)])
def test_confidence_threshold_marks_unlabeled(finish: object, threshold: float, keep_from: int) -> None:
    # keep_from: smallest u8 confidence with conf / 255 >= threshold, worked out by hand
    # (0.6 * 255 = 153 exactly; 0.9 * 255 = 229.5 -> 230).
    conf = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ids = (np.arange(256) % 3).astype(np.uint8).reshape(16, 16)
    maps = NetworkMaps("labels", torch.from_numpy(ids), torch.from_numpy(conf), None)
    place = _place("stretch", (16, 16), (16, 16))
    labels, out_conf = finish(maps, place, 16, 16, threshold)  # type: ignore[operator]
    expected = np.where(conf >= keep_from, ids, UNLABELED)
    np.testing.assert_array_equal(_np(labels), expected)
    np.testing.assert_array_equal(_np(out_conf), conf)  # the confidence itself is not masked


@pytest.mark.parametrize("finish", FINISHERS)
def test_threshold_on_the_binary_path(finish: object) -> None:
    prob = np.array([[0, 50, 100, 127, 128, 160, 220, 255]], np.uint8)
    maps = NetworkMaps("binary", None, None, torch.from_numpy(prob))
    labels, _ = finish(maps, _place("stretch", (8, 1), (8, 1)), 8, 1, 0.75)  # type: ignore[operator]
    # confidence max(p, 255 - p) = 255 205 155 128 128 160 220 255; keep >= 192 (0.75 * 255 = 191.25)
    np.testing.assert_array_equal(_np(labels), [[0, 0, 255, 255, 255, 255, 1, 1]])


# nearest resampling of ids ----------------------------------------------------------------

def _grid_coords(place: Placement, grid_w: int, grid_h: int, out_w: int, out_h: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous grid coordinates (pixel i spans [i, i+1)) of the output pixel centers."""
    u = (np.arange(out_w) + 0.5) * place.content_w / out_w + place.pad_left
    v = (np.arange(out_h) + 0.5) * place.content_h / out_h + place.pad_top
    return u * grid_w / place.net_w, v * grid_h / place.net_h


def _nearest_candidates(ids: np.ndarray, place: Placement, out_w: int, out_h: int) -> list[np.ndarray]:
    """Pixel-center nearest, sampled a hair left/right and above/below each center: the four
    agree except where a center falls exactly on a grid boundary (a tie either choice is right)."""
    grid_h, grid_w = ids.shape
    x, y = _grid_coords(place, grid_w, grid_h, out_w, out_h)
    results = []
    for dx in (-1e-3, 1e-3):
        for dy in (-1e-3, 1e-3):
            ix = np.clip(np.floor(x + dx), 0, grid_w - 1).astype(int)
            iy = np.clip(np.floor(y + dy), 0, grid_h - 1).astype(int)
            results.append(ids[np.ix_(iy, ix)])
    return results


def _tie_mask(place: Placement, grid: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    index = np.arange(grid[0] * grid[1]).reshape(grid[1], grid[0])
    candidates = _nearest_candidates(index, place, *out)
    return np.any([c != candidates[0] for c in candidates[1:]], axis=0)


def _assert_nearest(result: np.ndarray, source: np.ndarray, place: Placement, out: tuple[int, int]) -> None:
    candidates = _nearest_candidates(source, place, *out)
    ok = np.any([result == c for c in candidates], axis=0)
    assert ok.all(), f"{(~ok).sum()} pixels are not the nearest grid value, e.g. at {np.argwhere(~ok)[:5].tolist()}"
    ties = np.any([c != candidates[0] for c in candidates[1:]], axis=0)
    assert ties.mean() < 0.25  # the check above is exact everywhere else


SIZES = [
    # policy, source, net, grid, output
    ("stretch", (640, 480), (64, 48), (64, 48), (640, 480)),       # upsample
    ("stretch", (640, 480), (64, 48), (16, 12), (641, 479)),       # strided grid, odd size
    ("stretch", (640, 480), (64, 48), (64, 48), (37, 23)),         # downsample
    ("letterbox", (640, 480), (64, 64), (64, 64), (640, 480)),
    ("letterbox", (480, 640), (64, 64), (32, 32), (480, 640)),     # portrait, stride 2
    ("letterbox", (640, 480), (64, 36), (64, 36), (31, 19)),       # downsample, non-square net
    ("letterbox", (640, 480), (64, 64), (64, 64), (64, 48)),       # the content box itself
]


@pytest.mark.parametrize("policy, src, net, grid, out", SIZES)
@pytest.mark.parametrize("finish", FINISHERS)
def test_nearest_ids(finish: object, policy: str, src: tuple[int, int], net: tuple[int, int],
                     grid: tuple[int, int], out: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    palette = np.array([2, 5, 9, 17], np.uint8)
    ids = palette[rng.integers(0, 4, (grid[1], grid[0]))]
    conf = rng.integers(0, 256, (grid[1], grid[0])).astype(np.uint8)
    maps = NetworkMaps("labels", torch.from_numpy(ids), torch.from_numpy(conf), None)
    place = _place(policy, src, net)
    labels, out_conf = (_np(a) for a in finish(maps, place, out[0], out[1], 0.0))  # type: ignore[operator]
    assert labels.shape == (out[1], out[0]) and out_conf.shape == (out[1], out[0])
    assert set(np.unique(labels).tolist()) <= {2, 5, 9, 17}  # interpolation never invents ids
    _assert_nearest(labels, ids, place, out)
    _assert_nearest(out_conf, conf, place, out)  # confidence travels with its id


# bilinear resampling of a binary probability ------------------------------------------------

def _bilinear_reference(prob: np.ndarray, place: Placement, out_w: int, out_h: int) -> np.ndarray:
    """Float bilinear of the uint8 grid at the output pixel centers, edges replicated."""
    grid_h, grid_w = prob.shape
    t = torch.from_numpy(prob).float()[None, None]
    if place.is_identity_box:
        return F.interpolate(t, size=(out_h, out_w), mode="bilinear", align_corners=False)[0, 0].numpy()
    # grid_sample with normalized coordinates (align_corners=False: -1..1 spans the grid's edges).
    u = (np.arange(out_w) + 0.5) * place.content_w / out_w + place.pad_left
    v = (np.arange(out_h) + 0.5) * place.content_h / out_h + place.pad_top
    gx = 2.0 * (u / place.net_w) - 1.0
    gy = 2.0 * (v / place.net_h) - 1.0
    grid = torch.from_numpy(np.stack(np.meshgrid(gx, gy), axis=-1).astype(np.float32))[None]
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0].numpy()


@pytest.mark.parametrize("policy, src, net, grid, out", SIZES)
@pytest.mark.parametrize("finish", FINISHERS)
def test_binary_bilinear_matches_float_reference(finish: object, policy: str, src: tuple[int, int],
                                                 net: tuple[int, int], grid: tuple[int, int],
                                                 out: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    prob = _u8(torch.sigmoid(_smooth(rng, 1, grid[1], grid[0]))[0, 0].numpy())
    maps = NetworkMaps("binary", None, None, torch.from_numpy(prob))
    place = _place(policy, src, net)
    labels, conf = (_np(a) for a in finish(maps, place, out[0], out[1], 0.0))  # type: ignore[operator]
    ref = _bilinear_reference(prob, place, *out)
    ref_conf = np.maximum(ref, 255.0 - ref)
    tolerance = 1.0 + _warp_slack(prob, policy)
    assert np.abs(conf.astype(np.float64) - ref_conf).max() <= tolerance
    clear = np.abs(ref - 127.5) > tolerance  # decision is only defined up to the tolerance at the threshold
    np.testing.assert_array_equal(labels[clear], (ref[clear] >= 127.5).astype(np.uint8))
    assert set(np.unique(labels).tolist()) <= {0, 1}


# numpy and torch backends agree -----------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("kind", ["logits", "sigmoid"])
@pytest.mark.parametrize("policy, src, net, grid, out", SIZES + [
    ("letterbox", (1920, 1080), (64, 64), (32, 32), (1920, 1080)),
    ("stretch", (1920, 1080), (64, 36), (64, 36), (1920, 1080)),
])
def test_finish_torch_equals_finish_numpy(device: torch.device, kind: str, policy: str, src: tuple[int, int],
                                          net: tuple[int, int], grid: tuple[int, int],
                                          out: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    spec = _spec(kind, 4, net, policy)
    raw = _smooth(rng, 4 if kind == "logits" else 1, grid[1], grid[0])
    place = _place(policy, src, net)
    maps_cpu = network_maps(raw, spec)
    maps_dev = network_maps(raw.to(device), spec)
    for threshold in (0.0, 0.7):
        labels_np, conf_np = finish_numpy(maps_cpu, place, out[0], out[1], threshold)
        labels_t, conf_t = finish_torch(maps_dev, place, out[0], out[1], threshold)
        assert labels_t.device.type == device.type
        labels_t, conf_t = labels_t.cpu().numpy(), conf_t.cpu().numpy()
        assert labels_t.dtype == labels_np.dtype == np.uint8
        assert labels_t.shape == labels_np.shape == (out[1], out[0])
        differ = labels_t != labels_np
        if kind == "logits":
            # Nearest: identical except where an output pixel center is exactly between two
            # grid pixels (OpenCV and torch break such ties differently; both are nearest).
            ties = _tie_mask(place, grid, out)
            assert not (differ & ~ties).any()
            assert differ.mean() <= 0.01
            np.testing.assert_array_equal(conf_t[~ties], conf_np[~ties])
        else:
            # Bilinear: within 1 LSB, so the decision can only differ right at p = 0.5 or at
            # the confidence threshold (0.7 * 255 = 178.5: kept from 179).
            slack = int(np.ceil(_warp_slack(maps_cpu.probability.numpy(), policy)))
            assert np.abs(conf_t.astype(int) - conf_np.astype(int)).max() <= 1 + slack
            near = ((conf_np <= 129 + slack)
                    | ((threshold > 0) & (np.abs(conf_np.astype(int) - 179) <= 1 + slack)))
            assert near[differ].all()
            assert differ.mean() <= 0.002
