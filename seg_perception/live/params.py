"""Every parameter of segmentation_node: name, type, default, range, description. ROS-free.

The node declares these with typed descriptors; config/segmentation.yaml, the launch file and
the README are checked against this table by tests, so there is one home for each name.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..wire.images import DEFAULT_MAX_IMAGE_PIXELS
from ..engine.geometry import parse_output_size
from ..model.base import RUNTIMES
from ..engine.ground import CameraPose, GroundError

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
    """Array that is unset by default and then takes its value from elsewhere: the model (class
    lists), TF (camera_pose)."""
    array_type: str = "string"
    """The element type of a declared-unset array: string or double."""
    unset_is_empty: bool = False
    """String array declared without a value, read as empty while unset (a parameters file cannot
    spell an empty array, and rclpy cannot type one)."""

    @property
    def declared_unset(self) -> bool:
        """Declared with a type but no value (left out of, or commented in, parameter files)."""
        return self.model_default or self.unset_is_empty



PARAMS: tuple[ParamDef, ...] = (
    # model
    ParamDef("model", "selfie", "Built-in model name (selfie, selfie_landscape, drivable), path to a TorchScript "
             "(.pt/.ts), ONNX (.onnx) or OpenVINO IR (.xml) file with a description YAML beside it, or triton://HOST:PORT/NAME "
             "(a model on a Triton Inference Server).", stage="configure"),
    ParamDef("model_description", "", "Path to the model description YAML; empty = <model>.yaml beside "
             "the model file. Ignored for built-in models.", stage="configure"),
    ParamDef("device", "auto", "auto (CUDA if present, else CPU), cpu, cuda or cuda:N. An explicit CUDA "
             "device that is absent fails configure instead of silently running on the CPU.", stage="configure"),
    ParamDef("fp16", False, "Run the model in float16 (CUDA only).", stage="configure"),
    ParamDef("cpu_threads", 0, "Intra-op threads of the model on the CPU, for torch and ONNX Runtime alike; "
             "0 = one per core this process may use.", stage="configure", min=0, max=1024),
    ParamDef("runtime", "auto", "What runs the model: auto (torch for built-ins and TorchScript, ONNX Runtime "
             "for .onnx, OpenVINO for OpenVINO IR .xml), torch, onnxruntime or openvino (CPU; needs the "
             "openvino package). onnxruntime/openvino run a built-in from its ONNX export, made once into "
             "$SEG_PERCEPTION_CACHE (default ~/.cache/seg_perception).", stage="configure", choices=RUNTIMES),
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
    ParamDef("camera_info_sync_tolerance", 0.1, "camera_info (and depth/camera_info) for a frame: the one "
             "with the frame's stamp, else the newest not newer than the frame by at most this (s); a "
             "frame with neither publishes no camera_info (counted in diagnostics).", min=0.0, max=10.0),
    ParamDef("depth_wait", 0.05, "How long (s) a frame may wait for its depth partner after inference.",
             min=0.0, max=1.0),
    # outputs
    ParamDef("output_size", "input", "Size of all image outputs: input, network, or WIDTHxHEIGHT."),
    ParamDef("confidence_threshold", 0.0, "Pixels whose winning-class confidence is below this are "
             "published as 255 (unlabeled).", min=0.0, max=1.0),
    ParamDef("overlay_alpha", 0.5, "Weight of the class color in segmentation/overlay.", min=0.0, max=1.0),
    ParamDef("obstacle_classes", [], "Classes whose points go into segmentation/obstacle_points; "
             "unset = the model's obstacle classes.", model_default=True),
    ParamDef("depth_exclude_classes", [], "Classes whose pixels are invalid in segmentation/depth_filtered "
             "(0 for 16UC1, NaN for 32FC1), e.g. the object to grasp; separate from obstacle_classes, so one "
             "node serves Nav2 and MoveIt. Unset = none.", unset_is_empty=True),
    ParamDef("temporal_smoothing", 0.0, "Weight of the past in a per-camera exponential moving average of "
             "class probabilities (fewer flickering pixels, a lag of about a/(1-a) frames); 0 = off. Restarts "
             "when a camera's image size or the model changes. Below 1: 1 would freeze the first mask.",
             min=0.0, max=0.99),
    ParamDef("publish_confidence", True, "Publish segmentation/confidence (only while subscribed)."),
    ParamDef("publish_color_mask", True, "Publish segmentation/color_mask (only while subscribed)."),
    ParamDef("publish_overlay", True, "Publish segmentation/overlay (only while subscribed)."),
    ParamDef("publish_points", True, "Publish segmentation/points, the organized labelled cloud "
             "(needs depth; only while subscribed)."),
    ParamDef("publish_obstacle_points", True, "Publish segmentation/obstacle_points (needs depth; "
             "only while subscribed)."),
    ParamDef("publish_depth_filtered", True, "Publish segmentation/depth_filtered, the paired depth at the "
             "mask's size without depth_exclude_classes (needs depth; only while subscribed)."),
    ParamDef("min_range", 0.1, "Obstacle points closer than this (m, from the camera) are dropped.",
             min=0.0, max=1000.0),
    ParamDef("max_range", 10.0, "Obstacle points farther than this (m) are dropped.", min=0.0, max=1000.0),
    ParamDef("voxel_size", 0.0, f"Obstacle cloud voxel grid (m); 0 = every point, else at least "
             f"{MIN_VOXEL_SIZE}.", min=0.0, max=10.0),
    ParamDef("output_reliability", "reliable", "QoS reliability of the outputs. reliable serves both "
             "reliable and best-effort subscribers.", stage="configure", choices=("best_effort", "reliable")),
    # live view in a browser (web/)
    ParamDef("web_port", 0, "TCP port of the live view in a browser (page, MJPEG streams, snapshots, "
             "status.json); 0 = off.", stage="configure", min=0, max=65535),
    ParamDef("web_address", "127.0.0.1", "Address the live view listens on. 127.0.0.1 = this machine "
             "only; 0.0.0.0 (or a robot's LAN address) opens it, without authentication, to the network.",
             stage="configure"),
    ParamDef("web_max_fps", 10.0, "Frames per second of each live-view stream (at most; frames are "
             "dropped, never queued, for a slower viewer).", min=0.1, max=60.0),
    ParamDef("web_jpeg_quality", 80, "JPEG quality of the live-view streams.", min=1, max=100),
    ParamDef("web_max_clients", 8, "Live view: connections open at once (page, streams and status "
             "polls together); more are answered 503.", stage="configure", min=1, max=64),
    ParamDef("web_timeout", 10.0, "Live view: seconds a client may take to send its request, and one "
             "write to a stream may wait before a client that stopped reading is disconnected.",
             stage="configure", min=0.5, max=300.0),
    # ground projection (camera-only obstacles)
    ParamDef("ground_projection", False, "Project each image column's first non-free pixel from the bottom onto "
             "the ground plane z = 0 of base_frame: publish segmentation/scan (LaserScan) and "
             "segmentation/ground_points. Needs camera_info and the camera's pose (TF or camera_pose)."),
    ParamDef("base_frame", "base_link", "Frame whose z = 0 plane is the ground, and the frame_id of "
             "segmentation/scan and segmentation/ground_points."),
    ParamDef("camera_pose", [], "[x, y, z, qx, qy, qz, qw]: pose of the image's frame (the optical frame, "
             "header.frame_id) in base_frame; unset = looked up in TF at each frame's stamp.",
             model_default=True, array_type="double"),
    ParamDef("free_classes", [], "Classes that are drivable ground for ground projection; unset = the "
             "model's free classes (drivable: drivable_area, lane_line).", model_default=True),
    ParamDef("scan_angle_increment", math.radians(0.5), "Bearing step (rad) of segmentation/scan.",
             min=0.0001, max=0.5),
    ParamDef("ground_max_range", 10.0, "Range (m) of segmentation/scan: free ground reaching it reads +inf, "
             "contacts beyond it are dropped.", min=0.1, max=1000.0),
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
        if name in ("obstacle_classes", "depth_exclude_classes", "free_classes") and class_names is not None:
            unknown = [c for c in value if c not in class_names]
            if unknown:
                return f"{name} {unknown} are not classes of the model {class_names}"
        if name == "camera_pose" and value:
            try:
                CameraPose.from_xyz_quaternion(list(value))
            except GroundError as exc:
                return f"camera_pose: {exc}"
        if name == "base_frame" and not str(value).strip("/"):
            return "base_frame must name a frame"
    if "min_range" in values and "max_range" in values and values["min_range"] >= values["max_range"]:
        return f"min_range ({values['min_range']}) must be below max_range ({values['max_range']})"
    return None


# start-up checks: what a params file or `-p name:=value` gave, before rclpy sees it --------------

IGNORED_PREFIXES = ("qos_overrides.",)
"""Overrides that are not ours to check: rclpy reads them when a publisher/subscription is made."""


class StartupParameterError(ValueError):
    """A parameter given at start that the node cannot run with: one line, exit code 2."""


def type_name(value: Any) -> str:
    """How the ROS parameter types are written in `ros2 param` and the params file."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        if not value:
            return "array"
        return f"{type_name(value[0])} array"
    return type(value).__name__


def expected_text(pdef: ParamDef) -> str:
    """The type a parameter takes, with its range or choices: 'a double in [0.0, 1.0]'."""
    kind = f"{pdef.array_type} array" if pdef.declared_unset else type_name(pdef.default)
    text = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    if pdef.choices:
        text += f", one of {', '.join(pdef.choices)}"
    elif pdef.min is not None and pdef.max is not None:
        lo, hi = (int(pdef.min), int(pdef.max)) if kind == "integer" else (float(pdef.min), float(pdef.max))
        text += f" in [{lo}, {hi}]"
    return text


def _same_type(pdef: ParamDef, value: Any) -> bool:
    expected = f"{pdef.array_type} array" if pdef.declared_unset else type_name(pdef.default)
    given = type_name(value)
    if expected.endswith("array") and given == "array":
        return True  # [] has no element type
    return given == expected or (expected == "array" and given.endswith("array"))


def startup_value_problem(name: str, value: Any) -> str | None:
    """Why a value given at start for a known parameter is refused, in one line naming the
    parameter, the value, and the type and range it needs; None when it is fine."""
    pdef = BY_NAME.get(name)
    if pdef is None:
        return None
    shown = repr(value) if isinstance(value, str) else str(value)
    if not _same_type(pdef, value):
        hint = ""
        if type_name(value) == "integer" and type_name(pdef.default) == "double":
            hint = f" (write {float(value)})"
        elif type_name(pdef.default) == "string array" or (pdef.declared_unset and pdef.array_type == "string"):
            hint = f" (write {name}:=\"['{value}']\" on the command line)" if isinstance(value, str) else ""
        return (f"parameter {name}: got {shown} ({type_name(value)}), expected {expected_text(pdef)}{hint}")
    out_of_range = (pdef.min is not None and pdef.max is not None and not isinstance(value, bool)
                    and isinstance(value, (int, float)) and not pdef.min <= value <= pdef.max)
    if out_of_range or (pdef.choices and value not in pdef.choices):
        return f"parameter {name}: got {shown}, expected {expected_text(pdef)}"
    return None


def unknown_names(given: list[str], known: list[str] | None = None) -> list[str]:
    """One warning per name that is no parameter of the node, with the closest known name."""
    import difflib

    known = list(BY_NAME) if known is None else known
    lines = []
    for name in sorted(given):
        if name in known or name.startswith(IGNORED_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        lines.append(f"unknown parameter '{name}' is ignored{guess}")
    return lines


def params_files(ros_args: list[str]) -> list[str]:
    """The files given with `--params-file` (ROS arguments, as launch_ros passes them too)."""
    return [ros_args[i + 1] for i, arg in enumerate(ros_args[:-1]) if arg == "--params-file"]


def _node_key_pattern(key: str) -> re.Pattern[str]:
    """rcl's params-file section names: '/**' any namespace, '*' one name, relative = from '/'."""
    key = key if key.startswith("/") else "/" + key
    text = re.escape(key).replace(r"/\*\*", "(/[^/]+)*").replace(r"\*", "[^/]+")
    return re.compile(f"^{text}$")


def read_params_file(path: str) -> Any:
    """The YAML content of a params file; StartupParameterError (one line) when rcl could not
    read it either (missing, not YAML)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split()) or type(exc).__name__
        raise StartupParameterError(f"params file {path} cannot be read: {first}") from None


def params_file_problems(path: str, fully_qualified_name: str) -> list[str]:
    """Why a params file gives this node nothing: no section matching its name (rcl then ignores
    the whole file without a word), or a section without `ros__parameters`. [] when it applies."""
    import difflib

    content = read_params_file(path)
    name = fully_qualified_name.rsplit("/", 1)[-1]
    if not isinstance(content, dict) or not content:
        return [f"params file {path} holds no node sections (expected '{name}:' or '/**:' with "
                "'ros__parameters:' under it), so it sets nothing"]
    keys = [str(k) for k in content]
    matching = [k for k in keys if _node_key_pattern(k).match(fully_qualified_name)]
    if not matching:
        close = difflib.get_close_matches(name, [k.rsplit("/", 1)[-1] for k in keys], n=1, cutoff=0.6)
        guess = f"; did you mean '{name}' for '{close[0]}'?" if close else ""
        return [f"params file {path} has no section for this node ({fully_qualified_name}), so every "
                f"parameter in it is ignored: its sections are {keys}{guess} ('/**' applies to every node)"]
    return [f"params file {path}: section '{k}' has no 'ros__parameters:' key, so it sets nothing"
            for k in matching if not isinstance(content[k], dict) or "ros__parameters" not in content[k]]
