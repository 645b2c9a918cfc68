"""package.xml resolves with rosdep on a stock Jazzy / Kilted robot, and declares what we import.

Checked against rosdistro itself (../shared/upstream/rosdistro: rosdep/base.yaml, rosdep/python.yaml
and each distro's distribution.yaml), the files `rosdep install --from-paths src` resolves keys
with: every key must be a package released for Jazzy and Kilted, or a rosdep key with a rule for
the Ubuntu release those distros target. Skipped, saying so, where that snapshot is absent.
"""
from __future__ import annotations

import ast
import os
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROSDISTRO = Path(os.environ.get("SEG_PERCEPTION_ROSDISTRO", ROOT.parent / "shared" / "upstream" / "rosdistro"))
DISTROS = ("jazzy", "kilted")

# Python modules that are not ROS packages of the same name -> their rosdep key.
MODULE_KEYS = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "torch": "python3-pytorch-pip",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip",
    "skimage": "python3-skimage",
    "pytest": "python3-pytest",
    "tqdm": "python3-tqdm",
    "transformers": "python3-transformers-pip",
    "simplejpeg": "python3-simplejpeg-pip",
    "tf2_ros": "tf2_ros_py",  # the Python half of tf2_ros is its own package
}
# Extras with no rosdep key (or, mypy, one we deliberately do not pull in): imported only where
# used, so the rest runs without them; the tests that use them skip with a reason where absent.
UNDECLARED_EXTRAS = {
    "onnx": "test-only: exports test ONNX models (importorskip)",
    "ai_edge_litert": "test-only: the TFLite reference of the selfie port (importorskip)",
    "mypy": "test-only: a development check pinned with its stubs in requirements.txt (importorskip)",
    "pycocotools": "segment_offline's COCO output, imported when that format is asked for",
    "ray": "segment_offline --ray, imported when asked for",
    "av": "PyAV, video files in segment_offline/camera_replay (no rosdep key; pip install av), imported when a "
          "video is read; OpenCV reads videos without it",
    "tritonclient": "model: triton://... (no rosdep key; pip install tritonclient[grpc]), imported when such a model loads",
    "pytriton": "serve_triton, run in its own .venv-triton (nvidia-pytriton needs numpy < 2)",
    "openvino": "runtime:=openvino and int8 export (requirements-openvino.txt; no rosdep key), imported when used",
    "nncf": "export_model --int8 (requirements-openvino.txt; no rosdep key), imported when asked for",
    "google": "test-only: protobuf, tritonclient's dependency, for the Triton tests (importorskip)",
    "mcap": "test-only: the mcap reader, on --bag-out (test_real_readers, importorskip)",
    "mcap_ros2": "test-only: mcap-ros2-support, decodes --bag-out's CDR from its embedded definitions (importorskip)",
    "datumaro": "test-only: CVAT's importer library, in build/venv-datumaro (scripts/setup_datumaro.sh); "
                "test_real_readers runs it as a subprocess and skips without it",
    "grpc": "test-only: grpcio, tritonclient[grpc]'s dependency, serving a fake Triton in the Triton tests",
}
OURS = {"seg_perception", "devtools", "bench"}
RUN_TAGS = {"depend", "exec_depend"}
TEST_TAGS = RUN_TAGS | {"test_depend"}
BUILD_TAGS = {"depend", "build_depend", "buildtool_depend"}


def manifest() -> dict[str, set[str]]:
    """key -> the package.xml tags that declare it."""
    tags: dict[str, set[str]] = {}
    for element in ET.parse(ROOT / "package.xml").getroot():
        if isinstance(element.tag, str) and element.tag.endswith("depend"):
            tags.setdefault((element.text or "").strip(), set()).add(element.tag)
    return tags


def _need_rosdistro() -> None:
    if not (ROSDISTRO / "rosdep" / "base.yaml").is_file():
        pytest.skip(f"no rosdistro snapshot at {ROSDISTRO} (set SEG_PERCEPTION_ROSDISTRO to a ros/rosdistro checkout)")


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@cache
def rosdep_rules() -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for name in ("base.yaml", "python.yaml"):
        rules.update(_load(ROSDISTRO / "rosdep" / name))
    return rules


@cache
def distribution(distro: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(packages released for the distro, its Ubuntu codenames), as REP 143 defines them."""
    data = _load(ROSDISTRO / distro / "distribution.yaml")
    packages = set()
    for repo, entry in data["repositories"].items():
        release = entry.get("release")
        if release:
            # REP 143: without a package list the repository holds one package of its name.
            packages.update(release.get("packages") or [repo])
    return frozenset(packages), tuple(data["release_platforms"]["ubuntu"])


def rule_resolves(rule: Any, codename: str) -> bool:
    """Does a rosdep rule install something on Ubuntu `codename`?"""
    if not isinstance(rule, dict):
        return False
    os_rule = rule.get("ubuntu", rule.get("*"))
    if isinstance(os_rule, list):
        return bool(os_rule)
    if not isinstance(os_rule, dict):
        return False
    if {"pip", "apt", "source"} & set(os_rule):
        return True
    return bool(os_rule.get(codename, os_rule.get("*")))


def pip_packages(key: str) -> list[str]:
    os_rule = rosdep_rules()[key].get("ubuntu", rosdep_rules()[key].get("*"))
    if isinstance(os_rule, dict) and isinstance(os_rule.get("pip"), dict):
        return list(os_rule["pip"]["packages"])
    return []


def test_every_key_resolves_on_jazzy_and_kilted() -> None:
    _need_rosdistro()
    unresolved = []
    for key in manifest():
        for distro in DISTROS:
            packages, codenames = distribution(distro)
            if key in packages:
                continue
            if key in rosdep_rules() and all(rule_resolves(rosdep_rules()[key], c) for c in codenames):
                continue
            unresolved.append(f"{key} ({distro}: not a released package, no rosdep rule for ubuntu {codenames})")
    assert not unresolved, "rosdep cannot resolve: " + "; ".join(unresolved)


def test_the_check_rejects_what_rosdep_rejects() -> None:
    """The resolver above is not vacuous: keys that stopped `rosdep install` are refused."""
    _need_rosdistro()
    packages, codenames = distribution("jazzy")
    for bad in ("python3-onnx-pip", "seg_perception_msgs", "python3-pytorch"):
        assert bad not in packages and not (bad in rosdep_rules() and rule_resolves(rosdep_rules()[bad], codenames[0]))
    assert {"rclpy", "vision_msgs", "bondpy", "launch_ros", "rviz2"} <= packages
    assert pip_packages("python3-pytorch-pip")[0] == "torch"


def _imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level module -> files importing it (import statements and pytest.importorskip("...")) ."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "importorskip" and node.args and isinstance(node.args[0], ast.Constant)):
                names = [str(node.args[0].value)]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def _key_for(module: str) -> str | None:
    if module in sys.stdlib_module_names or module in OURS or module == "__future__":
        return None
    return MODULE_KEYS.get(module, module)


def _py(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_every_import_is_declared() -> None:
    declared = manifest()
    problems = []
    scopes = ((_py("seg_perception", "launch"), RUN_TAGS, "exec_depend"),
              (_py("test", "devtools"), TEST_TAGS, "test_depend"))
    for files, tags, tag in scopes:
        for module, where in sorted(_imports(files).items()):
            key = _key_for(module)
            if key is None or module in UNDECLARED_EXTRAS:
                continue
            if not declared.get(key, set()) & tags:
                problems.append(f"{module} (imported by {', '.join(sorted(where)[:3])}): add <{tag}>{key}</{tag}>")
    assert not problems, ("imports not declared in package.xml (a module that is not a ROS package needs its "
                          "rosdep key in MODULE_KEYS here):\n" + "\n".join(problems))


def test_undeclared_extras_are_imported_only_where_used() -> None:
    """Extras without a key never sit at module level of the package: importing it never needs them."""
    at_top = []
    for path in _py("seg_perception", "launch"):
        for node in ast.parse(path.read_text(), str(path)).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            at_top += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in UNDECLARED_EXTRAS]
    assert not at_top, at_top


def test_no_key_is_declared_twice() -> None:
    entries = [(e.tag, (e.text or "").strip()) for e in ET.parse(ROOT / "package.xml").getroot()
               if isinstance(e.tag, str) and e.tag.endswith("depend")]
    assert len(entries) == len(set(entries)), sorted({e for e in entries if entries.count(e) > 1})


def test_build_keys_match_cmake() -> None:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    declared = manifest()
    for key, tags in declared.items():
        if tags & {"buildtool_depend", "build_depend"}:
            assert f"find_package({key} REQUIRED)" in cmake, f"{key} is a build dependency CMake never finds"
    for found in ("ament_cmake", "ament_cmake_python", "rosidl_default_generators", "std_msgs"):
        assert declared.get(found, set()) & BUILD_TAGS, f"CMakeLists.txt finds {found}: declare it"


def test_readme_names_every_pip_key_and_its_packages() -> None:
    _need_rosdistro()
    readme = (ROOT / "README.md").read_text()
    pip_keys = [key for key in manifest() if key in rosdep_rules() and pip_packages(key)]
    assert {"python3-pytorch-pip", "python3-onnxruntime-pip", "python3-rosbags-pip"} <= set(pip_keys)
    for key in pip_keys:
        assert f"`{key}`" in readme, f"README should say that {key} comes from pip"
        for package in pip_packages(key):
            assert f"`{package}`" in readme, f"README should name the pip package {package} ({key})"
    assert "PIP_BREAK_SYSTEM_PACKAGES=1" in readme
