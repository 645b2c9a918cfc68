"""The package layout holds: ROS stays in ros/ and apps/, and imports run one way.

apps -> ros -> {live, offline, deploy, web} -> engine -> model -> models, wire

1. Every module of every ROS-free package imports while rclpy, every *_msgs package,
   builtin_interfaces, rcl_interfaces, launch and seg_perception.msg are made unimportable.
2. Every import of seg_perception inside a package (lazy ones in functions included, read from
   the source) targets a package that package may use.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import seg_perception

ROS_FREE = ("wire", "model", "models", "engine", "live", "offline", "deploy", "web")

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
                raise ImportError(f"ROS import of {name!r} outside ros/ and apps/")
            return None

    sys.meta_path.insert(0, Wall())
    names = []
    for sub in PACKAGES:
        pkg = importlib.import_module("seg_perception." + sub)
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
            names.append(info.name)
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print(len(names))
''').replace("PACKAGES", repr(ROS_FREE))

# What each package may import of seg_perception (besides itself).
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "models": set(),
    "model": {"wire", "models"},
    "engine": {"wire", "model", "models"},
    "live": {"wire", "model", "engine"},
    "offline": {"wire", "model", "models", "engine"},
    "deploy": {"wire", "model", "models", "engine"},
    # The live view: serves what the node made (overlays, diagnostics) and the class map; it never
    # runs the engine itself, so it needs no more than the node's policy layer does.
    "web": {"wire", "model", "live"},
    "ros": {"wire", "model", "engine", "live", "web", "msg"},
    "apps": {"wire", "model", "models", "engine", "live", "offline", "deploy", "web", "ros", "msg"},
}
ROOT = Path(seg_perception.__file__).resolve().parent


def _imports(path: Path, package: str, source: str | None = None) -> list[tuple[int, str]]:
    """(line, target package) of every seg_perception import in one source file."""
    module_parts = ["seg_perception", *path.relative_to(ROOT).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts = module_parts[:-1]
        base = module_parts
    else:
        base = module_parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                name = ".".join(anchor + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "seg_perception":  # from seg_perception import x
                targets = [f"seg_perception.{alias.name}" for alias in node.names]
            else:
                targets = [name]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            parts = target.split(".")
            if parts[0] == "seg_perception" and len(parts) > 1 and parts[1] != package:
                found.append((node.lineno, parts[1]))
    return found


def test_every_package_has_a_rule_and_a_docstring() -> None:
    packages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "msg")
    assert packages == sorted(ALLOWED), packages
    for name in packages:
        doc = ast.get_docstring(ast.parse((ROOT / name / "__init__.py").read_text()))
        assert doc and "import" in doc, f"{name}/__init__.py must say what it is for and what it may import"


def test_imports_run_one_way() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in _imports(path, package):
                if target not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_direction_check_sees_a_wrong_import() -> None:
    """Relative and lazy imports are resolved: a wire module importing the engine is caught."""
    path = ROOT / "wire" / "cdr.py"
    source = path.read_text() + "\n\ndef _late():\n    from ..engine import frame\n"
    assert "engine" not in {t for _, t in _imports(path, "wire")}
    assert "engine" in {t for _, t in _imports(path, "wire", source)}


def test_every_ros_free_module_imports_without_ros() -> None:
    pytest.importorskip("torch", reason="the probe imports every module, torch runtimes included")
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert int(result.stdout.split()[-1]) >= 40, result.stdout


def test_the_probe_fails_on_a_ros_import() -> None:
    """The wall is real: the same probe refuses a module that imports rclpy."""
    probe = PROBE.replace("names = []", "import rclpy\nnames = []", 1)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "ROS import of 'rclpy'" in result.stderr
