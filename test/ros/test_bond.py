"""The bond nav2_lifecycle_manager expects: the real bondpy (a ROS install's, or the one
scripts/setup_upstream.sh builds from ../shared/upstream) plays the manager's side over DDS
against a segmentation_node process, as nav2_lifecycle_manager does with its defaults
(topic `bond`, id = the node's name, heartbeat period 0.1 s, timeout 4 s)."""
from __future__ import annotations

import sys
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


@pytest.fixture
def manager_bonds(ros: Any) -> Iterator[Any]:
    """Start bonds the way nav2_lifecycle_manager does after activating a node."""
    from bondpy.bondpy import Bond

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
        bond.shutdown()
        ros.destroy_subscription(bond.sub)
        ros.destroy_publisher(bond.pub)


def test_active_node_keeps_a_bond_like_nav2_nodes(ros: Any, seg_node: Any, manager_bonds: Any) -> None:
    from bond.msg import Status
    from lifecycle_msgs.msg import Transition

    from devtools.harness import Collector, change_state, stop_process

    running = seg_node({"autostart": False, "use_depth": False, "warmup_iterations": 1})
    node = f"{running.namespace}/{running.name}"
    topic = f"{running.namespace}/bond"
    heartbeats = Collector(ros, [(topic, Status)])
    assert change_state(ros, node, Transition.TRANSITION_CONFIGURE, TIMEOUT), running.log
    assert change_state(ros, node, Transition.TRANSITION_ACTIVATE, TIMEOUT), running.log

    first = manager_bonds(topic, running.name)
    assert first.wait_until_formed(TIMEOUT), f"no bond formed with the active node\n{running.log}"
    ours = [m for _, m in heartbeats.messages[topic] if m.instance_id != first.instance_id]
    assert ours and {(m.id, m.active, round(m.heartbeat_period, 3), round(m.heartbeat_timeout, 3))
                     for m in ours} == {(running.name, True, 0.1, 4.0)}

    assert change_state(ros, node, Transition.TRANSITION_DEACTIVATE, TIMEOUT)
    assert first.wait_until_broken(BROKEN_WITHIN), "deactivate did not break the bond"

    # Activated again (as the manager does after a reset), the node bonds again.
    assert change_state(ros, node, Transition.TRANSITION_ACTIVATE, TIMEOUT)
    second = manager_bonds(topic, running.name)
    assert second.wait_until_formed(TIMEOUT), running.log

    assert stop_process(running.proc) == 0, running.log
    assert second.wait_until_broken(BROKEN_WITHIN), "shutdown did not break the bond"
    ros.destroy_subscription(heartbeats.subs[0])


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
