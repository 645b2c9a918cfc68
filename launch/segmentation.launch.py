"""Start seg_perception's segmentation_node (and optionally RViz).

    ros2 launch seg_perception segmentation.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth:=/camera/aligned_depth_to_color/image_raw \
        depth_camera_info:=/camera/aligned_depth_to_color/camera_info use_rviz:=true

Declarative only. Everything here is also reachable without launch:
    ros2 run seg_perception segmentation_node --ros-args --params-file <yaml> -r image:=<topic> ...
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import IfElseSubstitution, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# name, default, description. `model`/`device` defaults equal the node's parameter defaults;
# given on the command line they override the params file.
ARGUMENTS = (
    ("namespace", "", "Namespace of the node and its segmentation/* topics."),
    ("image", "image", "Camera image topic (sensor_msgs/Image), or the base of <image>/compressed."),
    ("camera_info", "camera_info", "CameraInfo of the color camera."),
    ("depth", "depth", "Depth image registered to the color camera (16UC1 mm or 32FC1 m)."),
    ("depth_camera_info", "depth/camera_info", "CameraInfo of the depth image."),
    ("params_file", PathJoinSubstitution([FindPackageShare("seg_perception"), "config", "segmentation.yaml"]),
     "Parameters file."),
    ("model", "selfie", "Built-in model name or path to a .pt/.ts/.onnx model with its description YAML."),
    ("device", "auto", "auto | cpu | cuda | cuda:N"),
    ("use_compressed", "false", "Subscribe <image>/compressed (sensor_msgs/CompressedImage)."),
    ("use_rviz", "false", "Open RViz with the seg_perception view."),
    ("log_level", "info", "Logging level of the node."),
)


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, default, text in ARGUMENTS]
    image = LaunchConfiguration("image")
    segmentation = Node(
        package="seg_perception",
        executable="segmentation_node",
        name="segmentation_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model": LaunchConfiguration("model"),
                "device": LaunchConfiguration("device"),
                "input_transport": IfElseSubstitution(LaunchConfiguration("use_compressed"),
                                                      if_value="compressed", else_value="raw"),
            },
        ],
        remappings=[
            ("image", image),
            ("image/compressed", [image, "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("depth", LaunchConfiguration("depth")),
            ("depth/camera_info", LaunchConfiguration("depth_camera_info")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="seg_perception_rviz",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", PathJoinSubstitution([FindPackageShare("seg_perception"), "config", "segmentation.rviz"])],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
    )
    return LaunchDescription([*args, segmentation, rviz])
