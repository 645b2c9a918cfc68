"""launch/segmentation.launch.py, run for real: launch.LaunchService (what `ros2 launch` runs) in
its own process starts the node; this side reads the running node's parameters, state and topics
over DDS, then interrupts launch as Ctrl-C does and checks that everything shut down cleanly.

Needs the upstream launch / launch_ros: a ROS install has them; here scripts/setup_upstream.sh
installs them from ../shared/upstream. Skipped, saying so, where neither is present.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from seg_perception.live import params

pytest.importorskip("rclpy")
_WHY = "needs the upstream launch / launch_ros (a ROS install, or scripts/setup_upstream.sh)"
pytest.importorskip("launch", reason=_WHY)
pytest.importorskip("launch_ros", reason=_WHY)

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0

# Runs in the launch process: include the launch file with the given arguments, as `ros2 launch`
# does; with "drive", configure and activate the node through launch's own lifecycle events.
DRIVER = r"""
import json, sys
from launch import LaunchDescription, LaunchService
from launch.actions import EmitEvent, IncludeLaunchDescription, RegisterEventHandler
from launch.event_handlers import OnProcessStart
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

path, arguments, drive = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "drive"
ours = lambda action: isinstance(action, LifecycleNode)
actions = [IncludeLaunchDescription(PythonLaunchDescriptionSource(path), launch_arguments=list(arguments.items()))]
if drive:
    actions += [
        RegisterEventHandler(OnProcessStart(target_action=ours, on_start=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=ours, transition_id=Transition.TRANSITION_CONFIGURE))])),
        RegisterEventHandler(OnStateTransition(goal_state="inactive", entities=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=ours, transition_id=Transition.TRANSITION_ACTIVATE))])),
    ]
service = LaunchService()
service.include_launch_description(LaunchDescription(actions))
sys.exit(service.run())
"""


def share_file(*parts: str) -> Path:
    """The installed copy, which `ros2 launch seg_perception ...` runs."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("seg_perception"), *parts)


def load_launch_module() -> Any:
    spec = importlib.util.spec_from_file_location("segmentation_launch", share_file("launch", "segmentation.launch.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Launched:
    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def interrupt(self) -> int:
        """Ctrl-C, as in a terminal running `ros2 launch`; the exit status of launch."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("launch did not shut down within the timeout:\n" + self.log[-3000:]) from None


@pytest.fixture
def launch_file(tmp_path: Path) -> Iterator[Any]:
    started: list[Launched] = []

    def start(arguments: dict[str, str], drive: bool = False) -> Launched:
        log_path = tmp_path / f"launch{len(started)}.log"
        with open(log_path, "w") as out:
            proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(share_file("launch", "segmentation.launch.py")),
                                     json.dumps(arguments), "drive" if drive else "auto"],
                                    stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        started.append(Launched(proc, log_path))
        return started[-1]

    yield start
    for launched in started:
        if launched.proc.poll() is None:
            launched.proc.send_signal(signal.SIGINT)
            try:
                launched.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                launched.proc.kill()


def node_parameters(ros: Any, node: str, names: list[str]) -> dict[str, Any]:
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    from devtools.harness import call_service

    reply = call_service(ros, GetParameters, f"{node}/get_parameters", GetParameters.Request(names=names), TIMEOUT)
    return {name: parameter_value_to_python(v) for name, v in zip(names, reply.values)}


def wait_active(ros: Any, node: str, launched: Launched) -> None:
    from lifecycle_msgs.msg import State

    from devtools.harness import lifecycle_state, wait_until

    def active() -> bool:
        assert launched.proc.poll() is None, "launch exited:\n" + launched.log[-3000:]
        try:
            return lifecycle_state(ros, node, TIMEOUT) == State.PRIMARY_STATE_ACTIVE
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; launch output:\n{launched.log[-3000:]}") from None
    wait_until(active, TIMEOUT, f"{node} active")


def assert_clean_shutdown(ros: Any, launched: Launched, mask_topic: str) -> None:
    from devtools.harness import wait_until

    assert launched.interrupt() == 0, launched.log[-3000:]
    assert "process has finished cleanly" in launched.log, launched.log[-3000:]
    wait_until(lambda: ros.count_publishers(mask_topic) == 0, TIMEOUT, f"{mask_topic} gone after shutdown")


def rviz_displays() -> list[tuple[str, str]]:
    """(display class, topic) of every enabled display with a topic in the shipped RViz view."""
    config = yaml.safe_load(share_file("config", "segmentation.rviz").read_text())
    return [(d["Class"], d["Topic"]["Value"]) for d in config["Visualization Manager"]["Displays"]
            if "Topic" in d and d.get("Enabled", True)]


def shipped_params() -> dict[str, Any]:
    return dict(yaml.safe_load(share_file("config", "segmentation.yaml").read_text())["/**"]["ros__parameters"])


def test_params_file_values_are_kept_and_given_arguments_applied(ros: Any, launch_file: Any, tmp_path: Path) -> None:
    """A params file's model/device/transport survive (no launch default overrides them); the
    arguments given on the command line apply; launch lifecycle events configure and activate it."""
    from devtools.harness import wait_until

    namespace = f"launch{os.getpid()}"
    in_file = {**shipped_params(), "model": "selfie_landscape", "device": "cpu", "input_transport": "compressed",
               "use_depth": False, "output_size": "network", "confidence_threshold": 0.25, "warmup_iterations": 1,
               "autostart": False}
    params_file = tmp_path / "robot.yaml"
    params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": in_file}}))
    camera = f"/{namespace}_camera/image_raw"
    launched = launch_file({"namespace": namespace, "params_file": str(params_file), "image": camera,
                            "confidence_threshold": "0.5", "use_sim_time": "true"}, drive=True)
    node = f"/{namespace}/segmentation_node"
    wait_active(ros, node, launched)

    expected = {**in_file, "confidence_threshold": 0.5, "use_sim_time": True}
    got = node_parameters(ros, node, sorted(expected))
    assert got == expected

    mask = f"/{namespace}/segmentation/mask"
    assert ros.count_publishers(mask) == 1
    wait_until(lambda: ros.count_subscribers(f"{camera}/compressed") == 1, TIMEOUT, "compressed image subscription")
    assert ros.count_subscribers(camera) == 0  # input_transport: compressed, from the file
    assert ros.count_subscribers(f"/{namespace}/depth") == 0  # use_depth: false, from the file
    # RViz runs in the same namespace: each display's (relative) topic is one this node publishes.
    displays = rviz_displays()
    assert {topic for _, topic in displays} >= {"segmentation/color_mask", "segmentation/points"}
    for kind, topic in displays:
        assert not topic.startswith("/"), f"{topic}: absolute, so empty under a namespace"
        assert ros.count_publishers(f"/{namespace}/{topic}") == 1, topic
        # mono8 class ids look black in rviz2 (it normalizes only 16-bit and float images).
        assert not (kind.endswith("/Image") and topic == "segmentation/mask")
    assert_clean_shutdown(ros, launched, mask)


def test_no_arguments_run_the_shipped_params_file(ros: Any, launch_file: Any) -> None:
    from devtools.harness import wait_until

    launched = launch_file({})
    wait_active(ros, "/segmentation_node", launched)  # autostart: true in the shipped file
    expected = {**shipped_params(), "use_sim_time": False}
    assert node_parameters(ros, "/segmentation_node", sorted(expected)) == expected
    wait_until(lambda: ros.count_subscribers("/image") == 1 and ros.count_subscribers("/depth") == 1,
               TIMEOUT, "image and depth subscriptions")
    assert_clean_shutdown(ros, launched, "/segmentation/mask")


def test_launch_arguments_match_the_node_and_the_readme() -> None:
    module = load_launch_module()
    arguments = {a.name: a for a in module.generate_launch_description().get_launch_arguments()}
    for name, kind, _ in module.PARAMETER_ARGUMENTS:
        assert arguments[name].default_value[0].text == "", f"{name}: a default would override the params file"
        if name != "use_sim_time":  # every rclpy node declares it
            assert kind is type(params.BY_NAME[name].default), f"{name}: passed as {kind}, declared otherwise"
    readme = (ROOT / "README.md").read_text()
    for name in arguments:
        assert f"`{name}`" in readme, f"README does not document launch argument {name}"
    source = share_file("launch", "segmentation.launch.py").read_text()
    assert "eval(" not in source and "subprocess" not in source
    assert share_file("config", "segmentation.rviz").exists()


def test_readme_lifecycle_manager_snippet_builds() -> None:
    """The README's launch file for nav2_lifecycle_manager + this node: it runs up to the point
    where Nav2 itself is needed (not installed here), and names our launch file and node."""
    from launch import LaunchContext
    from launch.actions import IncludeLaunchDescription
    from launch_ros.actions import Node

    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    [snippet] = [b for b in blocks if "nav2_lifecycle_manager" in b]
    scope: dict[str, Any] = {}
    exec(compile(snippet, "README.md (lifecycle manager snippet)", "exec"), scope)  # noqa: S102
    description = scope["generate_launch_description"]()
    [include] = [e for e in description.entities if isinstance(e, IncludeLaunchDescription)]
    [manager] = [e for e in description.entities if isinstance(e, Node)]
    assert (manager.node_package, manager.node_executable) == ("nav2_lifecycle_manager", "lifecycle_manager")
    ours = include.launch_description_source.get_launch_description(LaunchContext())
    assert "autostart" in {a.name for a in ours.get_launch_arguments()}
    from launch.utilities import normalize_to_list_of_substitutions as subs
    from launch.utilities import perform_substitutions

    context = LaunchContext()
    given = {perform_substitutions(context, subs(k)): perform_substitutions(context, subs(v))
             for k, v in include.launch_arguments}
    assert given["autostart"] == "false"
    assert f'"node_names": ["{load_launch_module().NODE_NAME}"]' in snippet
