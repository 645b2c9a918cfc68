"""Every parameter of segmentation_node: name, type, default, range, description. ROS-free.

The node declares these with typed descriptors; config/segmentation.yaml, the launch file and
the README are checked against this table by tests, so there is one home for each name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..wire.images import DEFAULT_MAX_IMAGE_PIXELS
from ..engine.geometry import parse_output_size

MIN_VOXEL_SIZE = 0.001
"""Finest obstacle voxel grid (m). Finer is no filter at all for a depth camera, and voxel
indices of a 1e-20 m grid overflow (they once merged a whole wall into one point)."""
MAX_IMAGE_PIXELS = 2**27
"""Upper bound of max_image_pixels: 134 M pixels (16K), ~400 MB per rgb8 output."""


@dataclass(frozen=True)
class ParamDef:
    name: str
    default: Any
    description: str
    stage: str = "live"
    """When a new value takes effect. live: at once (checked when set). configure: re-read at each
    configure (model, device, topics, QoS); refused while the node is configured, so the way to
    change it is deactivate -> cleanup -> set -> configure. startup: read once when the process
    starts (read-only)."""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    model_default: bool = False
    """String array that is unset by default and then takes its value from the model."""



PARAMS: tuple[ParamDef, ...] = (
    # model
    ParamDef("model", "selfie", "Built-in model name (selfie, selfie_landscape, drivable), path to a TorchScript "
             "(.pt/.ts) or ONNX (.onnx) file with a description YAML beside it, or triton://HOST:PORT/NAME "
             "(a model on a Triton Inference Server).", stage="configure"),
    ParamDef("model_description", "", "Path to the model description YAML; empty = <model>.yaml beside "
             "the model file. Ignored for built-in models.", stage="configure"),
    ParamDef("device", "auto", "auto (CUDA if present, else CPU), cpu, cuda or cuda:N. An explicit CUDA "
             "device that is absent fails configure instead of silently running on the CPU.", stage="configure"),
    ParamDef("fp16", False, "Run the model in float16 (CUDA only).", stage="configure"),
    ParamDef("cpu_threads", 0, "Intra-op threads of the model on the CPU, for torch and ONNX Runtime alike; "
             "0 = one per core this process may use.", stage="configure", min=0, max=1024),
    ParamDef("warmup_iterations", 3, "Forward passes at configure so the first frame is not slow.",
             stage="configure", min=0, max=100),
    ParamDef("triton_timeout", 1.0, "triton:// models: limit (s) of every call to the server; a frame "
             "whose call fails or times out is skipped and the server retried after a backoff.",
             stage="configure", min=0.01, max=60.0),
    ParamDef("triton_ssl", False, "triton:// models: gRPC over TLS.", stage="configure"),
    ParamDef("triton_root_certificates", "", "triton:// models: PEM file of the CA that signed the "
             "server's certificate; empty = the system's roots.", stage="configure"),
    ParamDef("triton_private_key", "", "triton:// models: client private key (PEM), for servers that "
             "require client certificates (mutual TLS).", stage="configure"),
    ParamDef("triton_certificate_chain", "", "triton:// models: client certificate chain (PEM), with "
             "triton_private_key.", stage="configure"),
    ParamDef("triton_shared_memory", False, "triton:// models on this machine (localhost): pass tensors "
             "through POSIX shared memory (the server needs --allow-shared-memory).", stage="configure"),
    # input
    ParamDef("cameras", [""], "Camera names C: each is subscribed on C/image (C/image/compressed), "
             "C/camera_info, C/depth, C/depth/camera_info and published under C/segmentation/...; one "
             "model serves all, frames waiting from several cameras run as one batch. [''] = one camera "
             "with the plain names.", stage="configure"),
    ParamDef("input_transport", "raw", "raw: subscribe sensor_msgs/Image on 'image'; compressed: "
             "sensor_msgs/CompressedImage on 'image/compressed'.", stage="configure", choices=("raw", "compressed")),
    ParamDef("image_reliability", "best_effort", "QoS reliability of the image subscriptions. best_effort "
             "(REP 2003 sensor data) receives from both best-effort and reliable publishers.",
             stage="configure", choices=("best_effort", "reliable")),
    ParamDef("image_qos_depth", 1, "QoS history depth of the image subscriptions. The worker always "
             "processes only the newest frame; each queued 1080p frame holds 6 MB.", stage="configure", min=1, max=100),
    ParamDef("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS, "Largest image (width x height) decoded or "
             "published: bigger raw or compressed frames are refused from their header before any "
             "allocation (a 48 KB PNG can declare 20000x20000). Default 8K UHD.",
             min=1, max=MAX_IMAGE_PIXELS),
    ParamDef("input_transport_depth", "raw", "raw: subscribe sensor_msgs/Image on 'depth'; compressedDepth: "
             "sensor_msgs/CompressedImage on 'depth/compressedDepth' (image_transport's compressed_depth_image_transport: "
             "PNG or RVL, 16UC1 or quantized 32FC1), decoded within max_image_pixels.", stage="configure",
             choices=("raw", "compressedDepth")),
    ParamDef("use_depth", True, "Subscribe 'depth' + 'depth/camera_info' and publish the labelled and "
             "obstacle clouds once depth arrives.", stage="configure"),
    ParamDef("depth_sync_tolerance", 0.005, "Max |stamp difference| (s) to pair a depth image with a color "
             "frame; 0 = exact stamps only. Unpaired frames are counted, never paired with stale depth.",
             min=0.0, max=1.0),
    ParamDef("depth_wait", 0.05, "How long (s) a frame may wait for its depth partner after inference.",
             min=0.0, max=1.0),
    # outputs
    ParamDef("output_size", "input", "Size of all image outputs: input, network, or WIDTHxHEIGHT."),
    ParamDef("confidence_threshold", 0.0, "Pixels whose winning-class confidence is below this are "
             "published as 255 (unlabeled).", min=0.0, max=1.0),
    ParamDef("overlay_alpha", 0.5, "Weight of the class color in segmentation/overlay.", min=0.0, max=1.0),
    ParamDef("obstacle_classes", [], "Classes whose points go into segmentation/obstacle_points; "
             "unset = the model's obstacle classes.", model_default=True),
    ParamDef("publish_confidence", True, "Publish segmentation/confidence (only while subscribed)."),
    ParamDef("publish_color_mask", True, "Publish segmentation/color_mask (only while subscribed)."),
    ParamDef("publish_overlay", True, "Publish segmentation/overlay (only while subscribed)."),
    ParamDef("publish_points", True, "Publish segmentation/points, the organized labelled cloud "
             "(needs depth; only while subscribed)."),
    ParamDef("publish_obstacle_points", True, "Publish segmentation/obstacle_points (needs depth; "
             "only while subscribed)."),
    ParamDef("min_range", 0.1, "Obstacle points closer than this (m, from the camera) are dropped.",
             min=0.0, max=1000.0),
    ParamDef("max_range", 10.0, "Obstacle points farther than this (m) are dropped.", min=0.0, max=1000.0),
    ParamDef("voxel_size", 0.0, f"Obstacle cloud voxel grid (m); 0 = every point, else at least "
             f"{MIN_VOXEL_SIZE}.", min=0.0, max=10.0),
    ParamDef("output_reliability", "reliable", "QoS reliability of the outputs. reliable serves both "
             "reliable and best-effort subscribers.", stage="configure", choices=("best_effort", "reliable")),
    # operation
    ParamDef("autostart", True, "Configure and activate at start. false: wait for a lifecycle manager.",
             stage="startup"),
    ParamDef("diagnostics_period", 1.0, "Period (s) of the /diagnostics status.", stage="configure",
             min=0.1, max=60.0),
    ParamDef("input_timeout", 2.0, "WARN in diagnostics when no frame arrived for this long (s).",
             min=0.1, max=3600.0),
    ParamDef("max_latency", 0.5, "WARN in diagnostics when end-to-end latency (now - stamp, s) exceeds this.",
             min=0.001, max=60.0),
)

BY_NAME: dict[str, ParamDef] = {p.name: p for p in PARAMS}
STAGES = ("live", "configure", "startup")


def refused_while_configured(names: list[str], state: str) -> str | None:
    """The reason to refuse setting configure-time parameters in lifecycle state `state`."""
    late = [n for n in names if n in BY_NAME and BY_NAME[n].stage == "configure"]
    if not late or state == "unconfigured":
        return None
    return (f"{', '.join(late)} take effect at configure and the node is {state}: deactivate and "
            f"clean up the node, set them, then configure again")


_CAMERA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def camera_names_problem(names: list[str]) -> str | None:
    """Why `cameras` is unusable: empty, repeated names, or a name that is not a relative topic
    namespace ("" is the unprefixed camera)."""
    if not names:
        return "cameras needs at least one entry ([''] for one camera with the plain topic names)"
    if len(set(names)) != len(names):
        return f"cameras has repeated names: {names}"
    bad = [n for n in names if n and not _CAMERA_NAME.match(n)]
    if bad:
        return (f"cameras {bad} are not relative topic namespaces (letters, digits, '_', '/' between "
                "parts; no leading '/' or '~')")
    return None


def validate(values: dict[str, Any], class_names: list[str] | None = None) -> str | None:
    """Checks beyond one parameter's own range. Returns the reason a set of values is refused."""
    for name, value in values.items():
        pdef = BY_NAME.get(name)
        if pdef is None:
            continue
        if pdef.choices and value not in pdef.choices:
            return f"{name} must be one of {list(pdef.choices)}, got '{value}'"
        if name == "cameras":
            reason = camera_names_problem(list(value))
            if reason:
                return reason
        if name == "output_size":
            try:
                size = parse_output_size(value)
            except ValueError as exc:
                return str(exc)
            limit = values.get("max_image_pixels", BY_NAME["max_image_pixels"].default)
            if isinstance(size, tuple) and size[0] * size[1] > limit:
                return (f"output_size {size[0]}x{size[1]} is {size[0] * size[1]} pixels, above "
                        f"max_image_pixels ({limit})")
        if name == "voxel_size" and 0.0 < value < MIN_VOXEL_SIZE:
            return f"voxel_size must be 0 (off) or at least {MIN_VOXEL_SIZE} m, got {value}"
        if name == "obstacle_classes" and class_names is not None:
            unknown = [c for c in value if c not in class_names]
            if unknown:
                return f"obstacle_classes {unknown} are not classes of the model {class_names}"
    if "min_range" in values and "max_range" in values and values["min_range"] >= values["max_range"]:
        return f"min_range ({values['min_range']}) must be below max_range ({values['max_range']})"
    return None
