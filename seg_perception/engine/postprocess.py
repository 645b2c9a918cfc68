"""Model output -> uint8 label map + uint8 confidence at the requested size.

Everything that can be done at network resolution is (softmax, argmax, confidence); only
uint8 maps are resampled, in one pass, with a map that undoes the letterbox exactly:
- class ids are resampled with nearest neighbour (interpolating ids invents classes);
- single-channel (sigmoid) models are resampled as a probability with bilinear weights and
  thresholded afterwards, which gives the smooth person outline MediaPipe itself draws,
  and is still one uint8 pass.
Confidence is the winning class probability scaled to 0..255; pixels whose confidence is
below `confidence_threshold` become UNLABELED (255).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .buffers import BufferPool
from .geometry import Placement
from ..model.labels import UNLABELED
from ..model.base import ModelSpec

if TYPE_CHECKING:
    import torch


@dataclass
class NetworkMaps:
    """Per-pixel uint8 results at model output resolution: numpy arrays when the model's
    output was one, else torch tensors on the model's device."""

    kind: str
    """'labels' (labels + confidence) or 'binary' (probability of class 1 only)."""
    labels: Any
    confidence: Any
    probability: Any


def network_maps(output: Any, spec: ModelSpec, kind: str | None = None) -> NetworkMaps:
    """Reduce a raw model output (N=1) to uint8 maps at its own resolution: with numpy/OpenCV
    for a numpy output (no torch), with torch on the output's device for a tensor. `kind`
    overrides the spec's output kind (smoothed probabilities of a logits model)."""
    kind = kind or spec.output
    if isinstance(output, np.ndarray):
        return _network_maps_numpy(output, kind)
    import torch

    if kind == "labels":
        ids = output.reshape(output.shape[-2:]) if output.dim() in (3, 4) else output
        return NetworkMaps("labels", ids.to(torch.uint8), torch.full_like(ids, 255, dtype=torch.uint8), None)
    out = output[0].float()
    if kind in ("sigmoid", "binary_logits"):
        prob = out[0] if kind == "sigmoid" else torch.sigmoid(out[0])
        return NetworkMaps("binary", None, None, _to_u8(prob))
    probs = torch.softmax(out, dim=0) if kind == "logits" else out
    conf, ids = probs.max(dim=0)
    return NetworkMaps("labels", ids.to(torch.uint8), _to_u8(conf), None)


def _to_u8(prob: torch.Tensor) -> torch.Tensor:
    import torch

    return (prob.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8)


def _network_maps_numpy(output: np.ndarray, kind: str) -> NetworkMaps:
    """network_maps for a numpy output; the same arithmetic as the torch path, in float32."""
    if kind == "labels":
        ids = output.reshape(output.shape[-2:]) if output.ndim in (3, 4) else output
        return NetworkMaps("labels", ids.astype(np.uint8), np.full(ids.shape, 255, np.uint8), None)
    out = np.asarray(output[0], np.float32)
    if kind in ("sigmoid", "binary_logits"):
        prob = out[0] if kind == "sigmoid" else _sigmoid(out[0])
        return NetworkMaps("binary", None, None, _to_u8_numpy(prob))
    ids = out.argmax(axis=0)
    if kind == "logits":
        # Softmax's winning probability without the full softmax: 1 / sum(exp(x - max)).
        top = out.max(axis=0)
        channels = out.shape[0]
        conf = 1.0 / cv2.exp((out - top).reshape(channels, -1)).sum(axis=0).reshape(top.shape)
    else:
        conf = np.take_along_axis(out, ids[None], axis=0)[0]
    return NetworkMaps("labels", ids.astype(np.uint8), _to_u8_numpy(conf), None)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + cv2.exp(np.ascontiguousarray(-x).reshape(1, -1)).reshape(x.shape))


def _to_u8_numpy(prob: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(prob, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def _host(grid: Any) -> np.ndarray:
    return grid if isinstance(grid, np.ndarray) else grid.cpu().numpy()


def _threshold_u8(confidence_threshold: float) -> int:
    """Confidence threshold 0..1 -> the smallest uint8 confidence that is kept."""
    return int(np.ceil(confidence_threshold * 255.0 - 1e-6))


def finish_numpy(maps: NetworkMaps, place: Placement, out_w: int, out_h: int,
                 confidence_threshold: float, buffers: BufferPool | None = None,
                 want_confidence: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """CPU: resample uint8 maps to (out_w, out_h) with OpenCV; returns (labels, confidence).

    With `buffers` (kept by the caller across frames), the full-size maps are written into
    arrays reused from it instead of fresh allocations. Without `want_confidence` (and no
    threshold) a binary model's confidence map is not computed and None is returned for it.
    """
    keep = _threshold_u8(confidence_threshold)

    def buf(name: str) -> np.ndarray | None:
        return None if buffers is None else buffers.get(name, out_h, out_w)

    if maps.kind == "binary":
        assert maps.probability is not None
        prob = _resample(_host(maps.probability), place, out_w, out_h, cv2.INTER_LINEAR, buf("prob"))
        # p > 0.5 <=> round(255 p) >= 128; confidence max(p, 1 - p), where 255 - p is bitwise not.
        _, labels = cv2.threshold(prob, 127, 1, cv2.THRESH_BINARY, dst=buf("labels"))
        if not (want_confidence or keep > 0):
            return labels, None
        confidence = cv2.max(prob, cv2.bitwise_not(prob, dst=buf("scratch")), dst=buf("confidence"))
    else:
        assert maps.labels is not None and maps.confidence is not None
        labels = _resample(_host(maps.labels), place, out_w, out_h, cv2.INTER_NEAREST, buf("labels"))
        confidence = _resample(_host(maps.confidence), place, out_w, out_h, cv2.INTER_NEAREST,
                               buf("confidence"))
    if keep > 0:
        labels = np.ascontiguousarray(labels)
        labels[confidence < keep] = UNLABELED
    return np.ascontiguousarray(labels), np.ascontiguousarray(confidence)


def _resample(grid: np.ndarray, place: Placement, out_w: int, out_h: int, interp: int,
              out: np.ndarray | None = None) -> np.ndarray:
    grid_h, grid_w = grid.shape
    if place.is_identity_box:
        if (grid_w, grid_h) == (out_w, out_h):
            if out is None:
                return grid
            np.copyto(out, grid)
            return out
        if interp == cv2.INTER_NEAREST:
            interp = cv2.INTER_NEAREST_EXACT  # pixel-center aligned, like the letterbox path
        return cv2.resize(grid, (out_w, out_h), dst=out, interpolation=interp)
    affine = place.output_to_grid(out_w, out_h, grid_w, grid_h)
    return cv2.warpAffine(grid, affine, (out_w, out_h), dst=out, flags=interp | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def finish_torch(maps: NetworkMaps, place: Placement, out_w: int, out_h: int,
                 confidence_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Device: the same resampling with torch (grid_sample); results stay on the device."""
    import torch

    keep = _threshold_u8(confidence_threshold)
    if maps.kind == "binary":
        assert maps.probability is not None
        prob = _resample_torch(maps.probability, place, out_w, out_h, "bilinear")
        labels = (prob >= 128).to(torch.uint8)
        confidence = torch.maximum(prob, 255 - prob)
    else:
        assert maps.labels is not None and maps.confidence is not None
        labels = _resample_torch(maps.labels, place, out_w, out_h, "nearest")
        confidence = _resample_torch(maps.confidence, place, out_w, out_h, "nearest")
    if keep > 0:
        labels = torch.where(confidence < keep, torch.full_like(labels, UNLABELED), labels)
    return labels, confidence


def _resample_torch(grid: torch.Tensor, place: Placement, out_w: int, out_h: int, mode: str) -> torch.Tensor:
    import torch

    grid_h, grid_w = grid.shape
    if place.is_identity_box and (grid_w, grid_h) == (out_w, out_h):
        return grid
    affine = place.output_to_grid(out_w, out_h, grid_w, grid_h)
    device = grid.device
    # Pixel-center sample positions in grid pixels, separable in x and y.
    xs = torch.arange(out_w, device=device, dtype=torch.float32) * affine[0, 0] + affine[0, 2]
    ys = torch.arange(out_h, device=device, dtype=torch.float32) * affine[1, 1] + affine[1, 2]
    if mode == "nearest":
        # floor(x + 0.5): the nearest center, same as OpenCV's INTER_NEAREST_EXACT/warpAffine.
        ix = torch.floor(xs + 0.5).clamp_(0, grid_w - 1).long()
        iy = torch.floor(ys + 0.5).clamp_(0, grid_h - 1).long()
        return grid.index_select(0, iy).index_select(1, ix)
    # Separable bilinear with edge replication; uint8 in/out, float weights.
    x0 = torch.floor(xs).clamp_(0, grid_w - 1)
    y0 = torch.floor(ys).clamp_(0, grid_h - 1)
    wx = (xs - x0).clamp_(0, 1)
    wy = (ys - y0).clamp_(0, 1)
    x0l, y0l = x0.long(), y0.long()
    x1l = (x0l + 1).clamp_(max=grid_w - 1)
    y1l = (y0l + 1).clamp_(max=grid_h - 1)
    g = grid.float()
    rows = g.index_select(0, y0l) * (1 - wy)[:, None] + g.index_select(0, y1l) * wy[:, None]
    out = rows.index_select(1, x0l) * (1 - wx)[None, :] + rows.index_select(1, x1l) * wx[None, :]
    return out.round_().clamp_(0, 255).to(torch.uint8)

