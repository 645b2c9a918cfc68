"""rclpy's API as data, and the rclpy API a package calls, both read from source with ``ast``
(nothing is imported), so one distribution's rclpy can be checked against another's without
installing it. No Humble wheels exist; test/unit/test_humble_api.py checks the package against
test/data/rclpy_humble_api.json, Humble's API in this form.

``python -m devtools.rclpy_api RCLPY_PACKAGE_DIR`` prints the API of an rclpy source tree (the
``rclpy/rclpy`` folder of a ros2/rclpy checkout, or an installed ``site-packages/rclpy``) as JSON.

API form: ``{"modules": {module: [public names]}, "classes": {Class: {"bases": [...],
"members": {name: [parameter names] | null}}}}``; a parameter list holds ``"**"`` when the
member takes ``**kwargs``; null is an attribute, property or enum member.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API = dict[str, Any]

# The modules a node uses; the rest of rclpy (actions, services, experimental) is not read.
MODULES = (
    "rclpy", "rclpy.node", "rclpy.lifecycle", "rclpy.lifecycle.node", "rclpy.lifecycle.managed_entity",
    "rclpy.lifecycle.publisher", "rclpy.publisher", "rclpy.subscription", "rclpy.timer", "rclpy.clock",
    "rclpy.time", "rclpy.duration", "rclpy.executors", "rclpy.parameter", "rclpy.qos", "rclpy.qos_event",
    "rclpy.event_handler", "rclpy.exceptions", "rclpy.signals", "rclpy.utilities", "rclpy.context",
    "rclpy.serialization", "rclpy.task", "rclpy.impl.rcutils_logger", "rclpy.callback_groups",
)


def _module_file(root: Path, module: str) -> Path | None:
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    if a.kwarg is not None:
        names.append("**")
    return names


def _class_members(node: ast.ClassDef) -> dict[str, list[str] | None]:
    members: dict[str, list[str] | None] = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = {ast.unparse(d) for d in item.decorator_list}
            if "property" in decorators or any(d.endswith(".setter") for d in decorators):
                members[item.name] = None
            elif not item.name.startswith("_") or item.name == "__init__":
                members[item.name] = _params(item)
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                if isinstance(target, ast.Name):
                    members[target.id] = None
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members[item.target.id] = None
    return members


def api_of(root: Path) -> API:
    """The API of the rclpy package folder ``root`` (the folder holding ``__init__.py``)."""
    modules: dict[str, list[str]] = {}
    classes: dict[str, dict[str, Any]] = {}
    for module in MODULES:
        path = _module_file(root, module)
        if path is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree) if module == "rclpy" else tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.ImportFrom):
                names.update(alias.asname or alias.name for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = {"bases": [ast.unparse(b).split(".")[-1] for b in node.bases],
                                      "members": _class_members(node)}
            if isinstance(node, ast.FunctionDef):
                classes.setdefault(f"{module}:functions", {"bases": [], "members": {}})["members"][node.name] = _params(node)
        modules[module] = sorted(n for n in names if not n.startswith("_") or n == "__all__")
    return {"modules": modules, "classes": classes}


@dataclass
class Use:
    """One use of rclpy in a source file."""

    where: str
    kind: str
    """'import' (module + name), 'member' (an attribute of an rclpy object, called with keywords)."""
    module: str = ""
    name: str = ""
    keywords: tuple[str, ...] = ()
    alternatives: list[list[Use]] = field(default_factory=list)
    """For a try/except ImportError import: each alternative's imports (any one resolving is enough)."""


def _imports(body: Iterable[ast.stmt], where: str) -> list[Use]:
    uses = []
    for stmt in body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.module.split(".")[0] == "rclpy":
            uses += [Use(f"{where}:{stmt.lineno}", "import", stmt.module, a.name) for a in stmt.names]
    return uses


def uses_in(path: Path, members: set[str], label: str) -> Iterator[Use]:
    """The rclpy imports of a file and its uses of ``members`` (attribute names of rclpy classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            options = [_imports(node.body, label)] + [_imports(h.body, label) for h in node.handlers]
            if any(options):
                guarded.update(id(s) for s in node.body)
                guarded.update(id(s) for h in node.handlers for s in h.body)
                yield Use(f"{label}:{node.lineno}", "alternatives", alternatives=options)
    rclpy_modules = {"rclpy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and id(node) not in guarded:
            yield from _imports([node], label)
        elif isinstance(node, ast.Import):
            rclpy_modules.update(a.asname or a.name for a in node.names if a.name.split(".")[0] == "rclpy")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            keywords = tuple(k.arg for k in node.keywords if k.arg)
            if isinstance(func.value, ast.Name) and func.value.id in rclpy_modules:
                yield Use(f"{label}:{node.lineno}", "import", "rclpy", func.attr, keywords)
            elif func.attr in members:
                yield Use(f"{label}:{node.lineno}", "member", name=func.attr, keywords=keywords)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr in members:
            yield Use(f"{label}:{node.lineno}", "member", name=node.attr)


def member_names(api: API) -> set[str]:
    return {m for cls, c in api["classes"].items() if ":" not in cls for m in c["members"]
            if not m.startswith("_")}


def _accepts(api: API, member: str, keywords: tuple[str, ...]) -> bool:
    params = [c["members"][member] for cls, c in api["classes"].items() if ":" not in cls and member in c["members"]]
    return any(p is None or "**" in p or set(keywords) <= set(p) for p in params)


def problems(uses: Iterable[Use], api: API, name: str, reference: API | None = None) -> list[str]:
    """What ``uses`` need that ``api`` (named ``name``) lacks.

    A call's keywords are checked where ``reference`` (the rclpy the package runs on here) accepts
    them: receivers are not typed, so ``pool.shutdown(wait=True)`` on a thread pool must not count
    as rclpy's ``Executor.shutdown``; a keyword no rclpy class takes is no rclpy call."""
    found = []
    for use in uses:
        if use.kind == "alternatives":
            if not any(all(not _import_problem(u, api, name) for u in option) for option in use.alternatives):
                found.append(f"{use.where}: none of the alternative imports exists in {name}: "
                             + " | ".join(", ".join(f"{u.module}.{u.name}" for u in o) for o in use.alternatives))
        elif use.kind == "import":
            problem = _import_problem(use, api, name)
            if problem:
                found.append(problem)
        else:
            if not any(":" not in cls and use.name in c["members"] for cls, c in api["classes"].items()):
                found.append(f"{use.where}: no rclpy class in {name} has '{use.name}'")
            elif (use.keywords and reference is not None and _accepts(reference, use.name, use.keywords)
                  and not _accepts(api, use.name, use.keywords)):
                found.append(f"{use.where}: '{use.name}' takes no keyword(s) {sorted(use.keywords)} in {name}")
    return found


def _import_problem(use: Use, api: API, name: str) -> str:
    names = api["modules"].get(use.module)
    if names is None:
        return f"{use.where}: module {use.module} does not exist in {name}"
    if use.name not in names:
        return f"{use.where}: {use.module} has no '{use.name}' in {name}"
    if use.keywords:
        fn = api["classes"].get(f"{use.module}:functions", {"members": {}})["members"].get(use.name)
        if fn is not None and "**" not in fn and not set(use.keywords) <= set(fn):
            return f"{use.where}: {use.module}.{use.name} takes no keyword(s) {sorted(set(use.keywords) - set(fn))} in {name}"
    return ""


def package_uses(files: Iterable[Path], members: set[str], root: Path) -> list[Use]:
    return [u for f in files for u in uses_in(f, members, str(f.relative_to(root)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rclpy_dir", type=Path, help="the rclpy package folder (holding __init__.py)")
    args = parser.parse_args(argv)
    json.dump(api_of(args.rclpy_dir), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
