"""The core never imports ROS: every module of seg_perception.core (and the built-in model
networks) imports while rclpy, every *_msgs package, builtin_interfaces, rcl_interfaces and
seg_perception.msg are made unimportable."""
from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent('''
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED_EXACT = {"rclpy", "builtin_interfaces", "rcl_interfaces", "rosidl_runtime_py",
                     "rosidl_parser", "ament_index_python", "seg_perception.msg", "launch", "launch_ros"}

    def blocked(name):
        root = name.split(".")[0]
        return (any(name == b or name.startswith(b + ".") for b in BLOCKED_EXACT)
                or root.endswith("_msgs") or root.endswith("_interfaces"))

    class Wall(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ImportError(f"ROS import of {name!r} from the core")
            return None

    sys.meta_path.insert(0, Wall())
    import seg_perception.core as core
    import seg_perception.models as models
    names = []
    for pkg in (core, models):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
            names.append(info.name)
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print(len(names))
''')


def test_every_core_module_imports_without_ros() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.split()[-1]) >= 20, result.stdout


def test_the_probe_fails_on_a_ros_import() -> None:
    """The wall is real: the same probe refuses a module that imports rclpy."""
    probe = PROBE.replace("import seg_perception.core as core", "import rclpy\nimport seg_perception.core as core")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "ROS import of 'rclpy'" in result.stderr
