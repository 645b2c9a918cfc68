"""The node's parameters in ROS terms: typed descriptors from the table in live/params.py, and the values a
frame needs, read atomically. Cross-field checks live there too."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..live import params
from ..wire.images import ImageLimits
from ..engine.frame import FrameRequest
from ..engine.ground import CameraPose, GroundError
from ..engine.geometry import parse_output_size


def descriptor(pdef: params.ParamDef) -> ParameterDescriptor:
    # Configure-time parameters stay writable: on_set refuses them while configured (with the
    # reason), and on_configure re-reads them, so cleanup -> set -> configure switches models.
    desc = ParameterDescriptor(description=pdef.description, read_only=pdef.stage == "startup")
    if pdef.stage == "configure":
        desc.additional_constraints = "takes effect at configure; refused while configured"
    if pdef.choices:
        desc.additional_constraints = "; ".join(filter(None, [desc.additional_constraints,
                                                              "one of: " + ", ".join(pdef.choices)]))
    if pdef.min is not None and pdef.max is not None:
        if isinstance(pdef.default, int) and not isinstance(pdef.default, bool):
            desc.integer_range = [IntegerRange(from_value=int(pdef.min), to_value=int(pdef.max), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(pdef.min),
                                                            to_value=float(pdef.max), step=0.0)]
    if pdef.declared_unset:
        desc.type = _ARRAY_TYPES[pdef.array_type][1]
    return desc


_ARRAY_TYPES = {"string": (Parameter.Type.STRING_ARRAY, ParameterType.PARAMETER_STRING_ARRAY),
                "double": (Parameter.Type.DOUBLE_ARRAY, ParameterType.PARAMETER_DOUBLE_ARRAY)}


def overrides(node: Node) -> dict[str, Any]:
    """What the params files and `-p name:=value` gave this node (rcl has already filtered them by
    node name). rclpy keeps them in this attribute and has no public getter."""
    return {name: p.value for name, p in getattr(node, "_parameter_overrides", {}).items()}


def declare_all(node: Node) -> list[str]:
    """Declare every parameter of the table. A value given at start with the wrong type or out
    of range raises params.StartupParameterError (one line, instead of rclpy's traceback);
    returns one warning per given name that is no parameter (with the closest one)."""
    given = overrides(node)
    for name, value in given.items():
        problem = params.startup_value_problem(name, value)
        if problem:
            raise params.StartupParameterError(problem)
    for pdef in params.PARAMS:
        try:
            if pdef.declared_unset:
                # Declared without a value: unset means "the model's own classes", "none", or TF for camera_pose.
                node.declare_parameter(pdef.name, _ARRAY_TYPES[pdef.array_type][0], descriptor(pdef))
            else:
                node.declare_parameter(pdef.name, pdef.default, descriptor(pdef))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            value = given.get(pdef.name, pdef.default)
            raise params.StartupParameterError(
                f"parameter {pdef.name}: got {value!r}, expected {params.expected_text(pdef)} "
                f"({' '.join(str(exc).split())})") from None
    return params.unknown_names([n for n in given if not node.has_parameter(n)])


def optional_string_array(node: Node, name: str) -> list[str] | None:
    try:
        value = node.get_parameter(name).value
    except ParameterUninitializedException:
        return None
    return None if value is None else list(value)


@dataclass(frozen=True)
class LiveOptions:
    """Everything a frame reads from live parameters, swapped as one object on a change."""

    request: FrameRequest
    """With every output enabled by parameters; the worker narrows it to what has subscribers."""
    use_depth: bool
    depth_sync_tolerance_ns: int
    camera_info_tolerance_ns: int
    depth_wait: float
    base_frame: str = "base_link"
    camera_pose: CameraPose | None = None
    """The camera_pose parameter; None: the pose comes from TF."""


def live_options(get: Callable[[str], Any], overrides: Mapping[str, Any] | None = None) -> LiveOptions:
    def value(name: str) -> Any:
        return overrides[name] if overrides and name in overrides else get(name)

    request = FrameRequest(
        output_size=parse_output_size(value("output_size")),
        confidence_threshold=value("confidence_threshold"), overlay_alpha=value("overlay_alpha"),
        confidence=value("publish_confidence"), color=value("publish_color_mask"),
        overlay=value("publish_overlay"), points=value("publish_points"),
        obstacle_points=value("publish_obstacle_points"), min_range=value("min_range"),
        max_range=value("max_range"), voxel_size=value("voxel_size"),
        depth_filtered=value("publish_depth_filtered"), temporal_smoothing=value("temporal_smoothing"),
        limits=ImageLimits(value("max_image_pixels")), ground=value("ground_projection"),
        ground_max_range=value("ground_max_range"), scan_angle_increment=value("scan_angle_increment"))
    pose = value("camera_pose")  # None while unset
    return LiveOptions(request=request, use_depth=value("use_depth"),
                       depth_sync_tolerance_ns=int(round(value("depth_sync_tolerance") * 1e9)),
                       camera_info_tolerance_ns=int(round(value("camera_info_sync_tolerance") * 1e9)),
                       depth_wait=value("depth_wait"), base_frame=str(value("base_frame")).lstrip("/"),
                       camera_pose=_pose(pose))


def _pose(value: Any) -> CameraPose | None:
    """The camera_pose parameter's pose; None when unset or empty, and when invalid: a value set at
    startup is refused by on_configure (params.validate) with the reason, never used."""
    if not value:
        return None
    try:
        return CameraPose.from_xyz_quaternion(list(value))
    except GroundError:
        return None
