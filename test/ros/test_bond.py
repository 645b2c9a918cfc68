"""The bond nav2_lifecycle_manager expects: the real bondpy (a ROS install's, or the one
scripts/setup_upstream.sh builds from ../shared/upstream) plays the manager's side over DDS
against a segmentation_node process, as nav2_lifecycle_manager does with its defaults
(topic `bond`, id = the node's name, heartbeat period 0.1 s, timeout 4 s)."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("rclpy")
_WHY = "needs bondpy and bond (a ROS install, or scripts/setup_upstream.sh)"
pytest.importorskip("bondpy.bondpy", reason=_WHY)
pytest.importorskip("bond.msg", reason=_WHY)

TIMEOUT = 30.0
# Our side breaks the bond on deactivate / shutdown: the manager must see it at once, well
# before its own 4 s heartbeat timeout would have ended it anyway.
BROKEN_WITHIN = 3.0


def _seconds(value: float) -> Any:
    from rclpy.duration import Duration

    return Duration(seconds=value)  # bondpy's waits take rclpy Durations


@pytest.fixture
def manager_bonds(ros: Any) -> Iterator[Any]:
    """Start bonds the way nav2_lifecycle_manager does after activating a node."""
    from bondpy.bondpy import Bond

    from seg_perception.ros.bond import retire

    bonds: list[Any] = []

    def start(topic: str, node_name: str) -> Any:
        bond = Bond(ros, topic, node_name)
        bond.heartbeat_period = 0.1
        bond.heartbeat_timeout = 4.0
        bond.start()
        bonds.append(bond)
        return bond

    yield start
    for bond in bonds:
        retire(bond, ros)


def test_active_node_keeps_a_bond_like_nav2_nodes(ros: Any, seg_node: Any, manager_bonds: Any) -> None:
    from bond.msg import Status
    from lifecycle_msgs.msg import Transition

    from devtools.harness import Collector, change_state, stop_process
    from seg_perception.ros.bond import retire

    from diagnostic_msgs.msg import DiagnosticArray

    running = seg_node({"autostart": False, "use_depth": False, "warmup_iterations": 1, "diagnostics_period": 0.2})
    node = f"{running.namespace}/{running.name}"
    topic = f"{running.namespace}/bond"
    heartbeats = Collector(ros, [(topic, Status)])
    diagnostics = Collector(ros, [("/diagnostics", DiagnosticArray)])

    def diagnosed(message: str) -> None:
        diagnostics.wait_for(lambda m: any(s.name.startswith(running.name) and s.message == message
                                           for _, a in m["/diagnostics"] for s in a.status), TIMEOUT, message)
    diagnosed("not configured")
    assert change_state(ros, node, Transition.TRANSITION_CONFIGURE, TIMEOUT), running.log
    assert change_state(ros, node, Transition.TRANSITION_ACTIVATE, TIMEOUT), running.log

    first = manager_bonds(topic, running.name)
    assert first.wait_until_formed(_seconds(TIMEOUT)), f"no bond formed with the active node\n{running.log}"
    def from_node(messages: dict[str, list[tuple[float, Any]]]) -> list[Any]:
        return [m for _, m in messages[topic] if m.instance_id != first.instance_id]
    try:
        heartbeats.wait_for(lambda m: len(from_node(m)) >= 3, TIMEOUT, "the node's heartbeats")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{running.log}") from None
    ours = from_node(heartbeats.messages)
    assert {(m.id, m.active, round(m.heartbeat_period, 3), round(m.heartbeat_timeout, 3))
                     for m in ours} == {(running.name, True, 0.1, 4.0)}

    assert change_state(ros, node, Transition.TRANSITION_DEACTIVATE, TIMEOUT)
    assert first.wait_until_broken(_seconds(BROKEN_WITHIN)), "deactivate did not break the bond"
    retire(first, ros)  # the manager drops a broken bond (else it objects to the next one's heartbeats)

    diagnosed("inactive")
    # Activated again (as the manager does after a reset), the node bonds again.
    assert change_state(ros, node, Transition.TRANSITION_ACTIVATE, TIMEOUT)
    second = manager_bonds(topic, running.name)
    assert second.wait_until_formed(_seconds(TIMEOUT)), running.log
    # The manager's own shutdown sequence: the lifecycle shutdown transition breaks it too.
    assert change_state(ros, node, Transition.TRANSITION_ACTIVE_SHUTDOWN, TIMEOUT)
    assert second.wait_until_broken(_seconds(BROKEN_WITHIN)), "shutdown did not break the bond"
    assert stop_process(running.proc) == 0, running.log
    ros.destroy_subscription(heartbeats.subs[0])
    # Through every state above, diagnostics named as diagnostic_updater names them, under one
    # hardware_id (aggregators group by it): the node's fully qualified name.
    ros.destroy_subscription(diagnostics.subs[0])
    ours = [s for _, a in diagnostics.messages["/diagnostics"] for s in a.status if s.name.startswith(running.name)]
    assert {s.name for s in ours} == {f"{running.name}: segmentation"}
    assert {s.hardware_id for s in ours} == {node}


def test_ctrl_c_ends_the_bond_and_the_process_cleanly(ros: Any, seg_node: Any, manager_bonds: Any) -> None:
    """Ctrl-C shuts rclpy's context down before the node can say DEAD: the manager learns it from
    the heartbeats stopping, within its heartbeat timeout, and the node still exits cleanly."""
    from bond.msg import Status

    from devtools.harness import Collector, stop_process

    running = seg_node({"use_depth": False, "warmup_iterations": 1})  # autostart: active at once
    topic = f"{running.namespace}/bond"
    heartbeats = Collector(ros, [(topic, Status)])
    bond = manager_bonds(topic, running.name)
    assert bond.wait_until_formed(_seconds(TIMEOUT)), running.log
    formed = time.perf_counter()
    # bondpy arms its heartbeat timeout at the first heartbeat after forming: let a few pass,
    # as they do on a robot.
    heartbeats.wait_for(lambda m: sum(at > formed and s.instance_id != bond.instance_id for at, s in m[topic]) >= 3,
                        TIMEOUT, "the node's heartbeats")
    ros.destroy_subscription(heartbeats.subs[0])
    assert stop_process(running.proc) == 0, running.log
    assert "Traceback" not in running.log, running.log
    assert bond.wait_until_broken(_seconds(4.0 + BROKEN_WITHIN)), "the manager never saw the node go"


def test_without_bondpy_the_wrapper_says_so_once(ros: Any, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    from seg_perception.ros.bond import LifecycleBond

    monkeypatch.setitem(sys.modules, "bondpy", None)  # what `import bondpy` meets where it is absent
    monkeypatch.setitem(sys.modules, "bondpy.bondpy", None)
    bond = LifecycleBond(ros)
    assert bond.create() is False and bond.create() is False and not bond.active
    bond.destroy()
    err = capfd.readouterr().err
    assert err.count("bondpy is not installed") == 1, err
