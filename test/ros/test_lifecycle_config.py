"""Lifecycle transitions, the parameters file, and the README staying in step with the node's
parameter table (the launch file: test_launch.py)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from seg_perception.live import params

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


def share_file(*parts: str) -> Path:
    """The installed copy (what `ros2 launch` uses); falls back to the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("seg_perception"), *parts)
        if path.exists():
            return path
    except (ImportError, LookupError, OSError):
        pass
    return ROOT.joinpath(*parts)


def yaml_params() -> dict[str, Any]:
    data = yaml.safe_load(share_file("config", "segmentation.yaml").read_text())
    return data["/**"]["ros__parameters"]


def test_params_file_lists_every_parameter_with_its_default() -> None:
    values = yaml_params()
    declared = {p.name: p for p in params.PARAMS}
    assert set(values) <= set(declared), f"unknown in yaml: {set(values) - set(declared)}"
    missing = {name for name, p in declared.items() if not p.declared_unset} - set(values)
    assert not missing, f"parameters missing from config/segmentation.yaml: {missing}"
    for name, value in values.items():
        assert value == declared[name].default and type(value) is type(declared[name].default), name
    text = share_file("config", "segmentation.yaml").read_text()
    for p in params.PARAMS:
        if p.declared_unset:
            assert f"# {p.name}:" in text, f"{p.name} should be documented (commented out) in the yaml"


def test_readme_documents_every_parameter_topic_and_both_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for p in params.PARAMS:
        assert f"`{p.name}`" in readme, f"README does not document parameter {p.name}"
    for topic in ("segmentation/mask", "segmentation/confidence", "segmentation/color_mask", "segmentation/overlay",
                  "segmentation/camera_info", "segmentation/class_map", "segmentation/label_info",
                  "segmentation/points", "segmentation/obstacle_points", "segmentation/depth_filtered", "/diagnostics"):
        assert f"`{topic}`" in readme, f"README does not document topic {topic}"
    assert "make demo" in readme and "make test" in readme


# --- lifecycle over DDS ---------------------------------------------------------------------

rclpy = pytest.importorskip("rclpy")


def _call(ros: Any, srv_type: Any, name: str, request: Any) -> Any:
    client = ros.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=TIMEOUT), name
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(TIMEOUT), name
        return future.result()
    finally:
        ros.destroy_client(client)


def test_lifecycle_transitions(ros: Any, seg_node: Any) -> None:
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from seg_perception.wire.images import fill_image
    from devtools.harness import Collector, wait_until
    from seg_perception.msg import ClassMap

    running = seg_node({"autostart": False, "use_depth": False, "warmup_iterations": 1})
    base = f"{running.namespace}/{running.name}"

    def state() -> int:
        return _call(ros, GetState, f"{base}/get_state", GetState.Request()).current_state.id

    def change(transition: int) -> bool:
        return _call(ros, ChangeState, f"{base}/change_state",
                     ChangeState.Request(transition=Transition(id=transition))).success

    image_pub = ros.create_publisher(Image, f"{running.namespace}/image", qos_profile_sensor_data)
    from seg_perception.ros.qos import LATCHED as latched
    maps = Collector(ros, [(f"{running.namespace}/segmentation/class_map", ClassMap)], latched)
    masks = Collector(ros, [(f"{running.namespace}/segmentation/mask", Image)])
    try:
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert image_pub.get_subscription_count() == 0 and maps.subs[0].get_publisher_count() == 0

        assert change(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        maps.wait_for(lambda m: len(next(iter(m.values()))) >= 1, TIMEOUT, "class map after configure")
        assert image_pub.get_subscription_count() == 0, "inactive: no subscription yet"

        assert change(Transition.TRANSITION_ACTIVATE)
        assert state() == State.PRIMARY_STATE_ACTIVE
        wait_until(lambda: image_pub.get_subscription_count() > 0, TIMEOUT, "image subscription after activate")
        msg = Image()
        msg.header.frame_id = "cam"
        fill_image(msg, np.zeros((48, 64, 3), np.uint8), "rgb8")
        sec = [0]

        def got_mask() -> bool:
            sec[0] += 1
            msg.header.stamp.sec = sec[0]
            image_pub.publish(msg)
            try:
                masks.wait_for(lambda m: len(next(iter(m.values()))) >= 1, 0.5, "mask")
                return True
            except TimeoutError:
                return False
        wait_until(got_mask, TIMEOUT, "a mask while active")

        assert change(Transition.TRANSITION_DEACTIVATE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        wait_until(lambda: image_pub.get_subscription_count() == 0, TIMEOUT, "subscription gone after deactivate")

        assert change(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        wait_until(lambda: maps.subs[0].get_publisher_count() == 0, TIMEOUT, "publishers gone after cleanup")

        # configure again with another model: configure-time parameters are re-read at configure
        set_model = f"{base}/set_parameters"
        # (a model of other classes: obstacle_classes left unset is the new model's, never the
        # first model's written back)
        drivable = [Parameter(name="model", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                                  string_value="drivable"))]
        result = _call(ros, SetParameters, set_model, SetParameters.Request(parameters=drivable)).results[0]
        assert result.successful, result.reason
        maps.clear()
        assert change(Transition.TRANSITION_CONFIGURE), running.log
        maps.wait_for(lambda m: len(next(iter(m.values()))) >= 1, TIMEOUT, "class map after reconfigure")
        topic = f"{running.namespace}/segmentation/class_map"
        reconfigured = maps.messages[topic][-1][1]
        assert reconfigured.model_name == "twinlitenet_bdd100k"
        assert [c.name for c in reconfigured.classes if c.obstacle] == ["background"]
        # ...and refused while configured, with the way to change them
        selfie = [Parameter(name="model", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                               string_value="selfie"))]
        result = _call(ros, SetParameters, set_model, SetParameters.Request(parameters=selfie)).results[0]
        assert not result.successful
        assert "take effect at configure" in result.reason and "inactive" in result.reason, result.reason
        assert change(Transition.TRANSITION_INACTIVE_SHUTDOWN)
        assert state() == State.PRIMARY_STATE_FINALIZED
    finally:
        ros.destroy_publisher(image_pub)
        for sub in maps.subs + masks.subs:
            ros.destroy_subscription(sub)


def test_params_file_loads_through_ros_args(ros: Any, seg_node: Any) -> None:
    from rcl_interfaces.srv import GetParameters

    from devtools.harness import wait_until

    running = seg_node({"use_depth": False, "warmup_iterations": 1},
                       params_file=str(share_file("config", "segmentation.yaml")))
    values = yaml_params()
    names = sorted(values)
    wait_until(lambda: running.proc.poll() is not None or ros.count_publishers(
        f"{running.namespace}/segmentation/mask") > 0, TIMEOUT, "node up")
    assert running.proc.poll() is None, running.log
    reply = _call(ros, GetParameters, f"{running.namespace}/{running.name}/get_parameters",
                  GetParameters.Request(names=names))
    from rclpy.parameter import parameter_value_to_python

    got = {name: parameter_value_to_python(v) for name, v in zip(names, reply.values)}
    overridden = {"use_depth": False, "warmup_iterations": 1}
    for name in names:
        assert got[name] == overridden.get(name, values[name]), name
