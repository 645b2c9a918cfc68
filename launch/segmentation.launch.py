"""Start seg_perception's segmentation_node as a lifecycle node (and optionally RViz).

    ros2 launch seg_perception segmentation.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth:=/camera/aligned_depth_to_color/image_raw \
        depth_camera_info:=/camera/aligned_depth_to_color/camera_info use_rviz:=true

Parameters come from `params_file` (default: the package's config/segmentation.yaml). The
parameter arguments below (model, device, ...) are empty by default, and an empty argument passes
nothing: only what you give on the command line is set on top of the params file, so a params
file's value is never replaced by a launch default.

Declarative apart from that one step, and one check: `use_rviz:=true` where RViz is not
installed starts the node alone, with a warning (not a failed launch that leaves the node running).

Where the `ros2` command is absent (the pip environment), the installed `seg_perception_launch`
runs this file through the launch library with the same arguments:
    seg_perception_launch image:=/camera/color/image_raw use_rviz:=true
Everything here is also reachable without launch:
    ros2 run seg_perception segmentation_node --ros-args --params-file <yaml> -p model:=... -r image:=<topic>
"""
from __future__ import annotations

from typing import Any

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

NODE_NAME = "segmentation_node"
SHARE = FindPackageShare("seg_perception")

# name, default, description
ARGUMENTS = (
    ("namespace", "", "Namespace of the node, its segmentation/* topics and RViz."),
    ("image", "image", "Camera image topic (sensor_msgs/Image), or the base of <image>/compressed."),
    ("camera_info", "camera_info", "CameraInfo of the color camera."),
    ("depth", "depth", "Depth image registered to the color camera (16UC1 mm or 32FC1 m), or the base of <depth>/compressedDepth."),
    ("depth_camera_info", "depth/camera_info", "CameraInfo of the depth image."),
    ("params_file", PathJoinSubstitution([SHARE, "config", "segmentation.yaml"]), "Parameters file."),
    ("log_level", "info", "Logging level of the node."),
    ("use_rviz", "false", "Open RViz with the seg_perception view (in the same namespace)."),
    ("rviz_config", PathJoinSubstitution([SHARE, "config", "segmentation.rviz"]), "RViz configuration."),
)

# Node parameters that are also launch arguments: name (= the parameter's), type, description.
# Default "": unset, the params file (or the node's default) decides.
PARAMETER_ARGUMENTS: tuple[tuple[str, Any, str], ...] = (
    ("model", str, "Built-in model name or path to a .pt/.ts/.onnx model with its description YAML."),
    ("model_description", str, "Path to the model description YAML (default: <model>.yaml beside it)."),
    ("device", str, "auto | cpu | cuda | cuda:N"),
    ("fp16", bool, "float16 inference (CUDA only): true | false"),
    ("input_transport", str, "raw (subscribe <image>) | compressed (subscribe <image>/compressed)"),
    ("input_transport_depth", str, "raw (subscribe <depth>) | compressedDepth (subscribe <depth>/compressedDepth)"),
    ("use_depth", bool, "Subscribe depth and publish the clouds: true | false"),
    ("output_size", str, "input | network | WIDTHxHEIGHT"),
    ("confidence_threshold", float, "0..1; less confident pixels are published as 255 (unlabeled)."),
    ("autostart", bool, "Configure and activate at start: true | false (false under a lifecycle manager)"),
    ("use_sim_time", bool, "Use /clock (simulation, rosbag play --clock): true | false"),
)


def parameter_overrides(context: LaunchContext) -> dict[str, ParameterValue]:
    """The parameter arguments that were given, typed as the node declares them."""
    overrides = {}
    for name, kind, _ in PARAMETER_ARGUMENTS:
        text = LaunchConfiguration(name).perform(context)
        if text != "":
            overrides[name] = ParameterValue(LaunchConfiguration(name), value_type=kind)
    return overrides


def rviz_missing() -> bool:
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return True
    return False


def _nodes(context: LaunchContext) -> list[Any]:
    namespace = LaunchConfiguration("namespace")
    image = LaunchConfiguration("image")
    overrides = parameter_overrides(context)
    segmentation = LifecycleNode(
        package="seg_perception",
        executable="segmentation_node",
        name=NODE_NAME,
        namespace=namespace,
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides] if overrides
        else [LaunchConfiguration("params_file")],
        remappings=[
            ("image", image),
            ("image/compressed", [image, "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("depth", LaunchConfiguration("depth")),
            ("depth/compressedDepth", [LaunchConfiguration("depth"), "/compressedDepth"]),
            ("depth/camera_info", LaunchConfiguration("depth_camera_info")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    # RViz subscribes the config's relative topics (segmentation/...) inside this namespace.
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="seg_perception_rviz",
        namespace=namespace,
        arguments=["-d", LaunchConfiguration("rviz_config")],
        parameters=[{"use_sim_time": overrides["use_sim_time"]}] if "use_sim_time" in overrides else [],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
    )
    if IfCondition(LaunchConfiguration("use_rviz")).evaluate(context) and rviz_missing():
        return [LogInfo(msg="WARNING: use_rviz:=true but RViz (package rviz2) is not installed here: starting "
                            "segmentation_node without it (install ros-<distro>-rviz2, or view the topics "
                            "from another machine)"), segmentation]
    return [segmentation, rviz]


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS]
    declared += [DeclareLaunchArgument(name, default_value="", description=f"{text} Unset: the params file's.")
                 for name, _, text in PARAMETER_ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
