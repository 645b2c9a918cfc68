"""Every rclpy API the package calls exists on ROS 2 Humble (and on the rclpy installed here).

No Humble wheels exist, so Humble's rclpy is read, not run: test/data/rclpy_humble_api.json holds
its public names and member signatures (devtools/rclpy_api.py's form, from the humble branch's
sources), and the package's imports, calls and keywords are read from its source with ast."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from devtools import rclpy_api

ROOT = Path(__file__).resolve().parents[2]
HUMBLE = json.loads((ROOT / "test" / "data" / "rclpy_humble_api.json").read_text())


def rclpy_files() -> list[Path]:
    """The package's modules that import rclpy (the layout keeps them in ros/ and apps/)."""
    files = [f for f in sorted((ROOT / "seg_perception").rglob("*.py")) if "rclpy" in f.read_text()]
    assert any(f.parent.name == "ros" for f in files) and any(f.parent.name == "apps" for f in files)
    return files


def installed_rclpy() -> Path | None:
    spec = importlib.util.find_spec("rclpy")  # finds without importing (no ROS environment needed)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def reference() -> rclpy_api.API | None:
    installed = installed_rclpy()
    return rclpy_api.api_of(installed) if installed is not None else None


def members() -> set[str]:
    """Attribute names of rclpy classes: Humble's, and the installed rclpy's where there is one, so
    a call of a member that only newer distributions have is looked at too."""
    names = rclpy_api.member_names(HUMBLE)
    installed = installed_rclpy()
    if installed is not None:
        names |= rclpy_api.member_names(rclpy_api.api_of(installed))
    return names


def test_every_rclpy_call_of_the_package_exists_on_humble() -> None:
    uses = rclpy_api.package_uses(rclpy_files(), members(), ROOT)
    imports = {(u.module, u.name) for u in uses if u.kind == "import"}
    # The collector sees what the node is built from (a collector that finds nothing passes anything).
    assert {("rclpy.lifecycle", "LifecycleNode"), ("rclpy.qos", "QoSProfile"), ("rclpy", "init")} <= imports
    called = {u.name for u in uses if u.kind == "member"}
    assert {"create_subscription", "create_lifecycle_publisher", "declare_parameter", "timer_period_ns"} <= called
    assert rclpy_api.problems(uses, HUMBLE, "Humble", reference()) == []


def test_and_on_the_installed_rclpy() -> None:
    installed = installed_rclpy()
    if installed is None:
        pytest.skip("no rclpy installed in this environment")
    api = rclpy_api.api_of(installed)
    assert "add_post_set_parameters_callback" in api["classes"]["Node"]["members"]  # Iron and later
    uses = rclpy_api.package_uses(rclpy_files(), members(), ROOT)
    assert rclpy_api.problems(uses, api, "the installed rclpy", api) == []


def test_the_check_finds_what_humble_lacks(tmp_path: Path) -> None:
    """The two differences the compat shims cover, written directly, are what the check reports;
    a shim with a Humble fallback passes."""
    ref = reference()
    if ref is None:
        pytest.skip("needs an Iron+ rclpy to tell the newer API from the older")
    # A keyword one of the installed rclpy's Node methods takes and Humble's does not (Jazzy:
    # create_timer(autostart=...)).
    now, then = ref["classes"]["Node"]["members"], HUMBLE["classes"]["Node"]["members"]
    method, keyword = next((m, sorted(set(p) - set(then[m]))[0]) for m, p in now.items()
                           if m != "__init__" and p and then.get(m) is not None and not set(p) <= set(then[m]))
    direct = tmp_path / "direct.py"
    direct.write_text(
        "from rclpy.event_handler import SubscriptionEventCallbacks\n"
        "from rclpy.lifecycle import LifecycleNode\n"
        "def wire(node: LifecycleNode, cb) -> None:\n"
        "    node.add_post_set_parameters_callback(cb)\n"
        f"    node.{method}({keyword}=None)\n")
    found = rclpy_api.problems(rclpy_api.uses_in(direct, members(), "direct.py"), HUMBLE, "Humble", ref)
    assert len(found) == 3, found
    assert "direct.py:1: module rclpy.event_handler does not exist in Humble" in found
    assert any("'add_post_set_parameters_callback'" in f for f in found)
    assert f"direct.py:5: '{method}' takes no keyword(s) ['{keyword}'] in Humble" in found
    shim = tmp_path / "shim.py"
    shim.write_text(
        "try:\n    from rclpy.event_handler import SubscriptionEventCallbacks\n"
        "except ImportError:\n    from rclpy.qos_event import SubscriptionEventCallbacks\n")
    assert rclpy_api.problems(rclpy_api.uses_in(shim, members(), "shim.py"), HUMBLE, "Humble") == []
    broken = tmp_path / "broken.py"
    broken.write_text(
        "try:\n    from rclpy.event_handler import SubscriptionEventCallbacks\n"
        "except ImportError:\n    from rclpy.qos_events import SubscriptionEventCallbacks\n")
    assert len(rclpy_api.problems(rclpy_api.uses_in(broken, members(), "broken.py"), HUMBLE, "Humble")) == 1


def test_the_snapshot_reads_like_the_installed_rclpy() -> None:
    """The snapshot and the extractor agree on form: Humble's Node members that Iron+ still has
    carry the same parameter names as the installed rclpy's (a typo in the transcription shows)."""
    installed = installed_rclpy()
    if installed is None:
        pytest.skip("no rclpy installed in this environment")
    now = rclpy_api.api_of(installed)["classes"]["Node"]["members"]
    then = HUMBLE["classes"]["Node"]["members"]
    for name in ("create_subscription", "create_publisher", "declare_parameter", "resolve_topic_name",
                 "add_on_set_parameters_callback", "destroy_subscription"):
        assert now[name] is not None and then[name] is not None
        assert set(then[name]) <= set(now[name]), name
