#!/usr/bin/env python3
"""Convert the TwinLiteNet authors' weights to the state dict of seg_perception's module.

The authors' ``pretrained/best.pth`` (chequanghuy/TwinLiteNet, MIT) is a DataParallel state
dict of their module. This renames every key onto ``seg_perception/models/twinlitenet.py``
(whose layer names are its own), checks that the two sets of keys and every shape agree, and
writes

    <out-dir>/twinlitenet_bdd100k.pt   the renamed state dict (torch.save, read weights-only)
    <out-dir>/LICENSE.twinlitenet      the license the weights are distributed under

The output is byte-for-byte reproducible. When the reference outputs of the authors' own code
lie beside the weights (``reference/*.npz``), the converted model is run on their inputs and
must match their raw outputs within --tolerance.

    python tools/convert_twinlitenet.py [--src-dir DIR] [--out-dir DIR] [--no-verify]

Defaults: --src-dir ../shared/models/twinlitenet (from the repository root), --out-dir
seg_perception/models.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC_DIR = REPO_ROOT.parent / "shared" / "models" / "twinlitenet"
DEFAULT_OUT_DIR = REPO_ROOT / "seg_perception" / "models"
SOURCE_WEIGHTS = "best.pth"
SOURCE_SHA256 = "98ffc6c8abc98fda72052117249ce4e2dbc85e58cfcfc6ee2d42f5398c772463"
LICENSE_OUT = "LICENSE.twinlitenet"

_BRANCH_INDEX = {"1": "0", "2": "1", "4": "2", "8": "3", "16": "4"}
# Authors' key -> ours, applied in order to each key. Their batch norm is `bn` (inside a `bn`
# wrapper in the residual ESP blocks), ours `norm`; their dilated branches are named by
# dilation (d1..d16), ours are a list in that order.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^module\.", ""),
    (r"^encoder\.level1\.", "encoder.stem."),
    (r"^encoder\.b([123])\.", r"encoder.fuse\1."),
    (r"^encoder\.level([23])_0\.", r"encoder.down\1."),
    (r"^encoder\.level([23])\.(\d+)\.", r"encoder.stage\1.\2."),
    (r"\.c1\.conv\.", ".reduce."),
    (r"\.d(1|2|4|8|16)\.conv\.", lambda m: f".branches.{_BRANCH_INDEX[m.group(1)]}."),  # type: ignore[dict-item]
    (r"\.bn\.bn\.", ".norm."),
    (r"\.bn\.act\.", ".act."),
    (r"\.bn\.", ".norm."),
    (r"^encoder\.sa\.(query|key|value)_conv\.", r"encoder.position_attention.\1."),
    (r"^encoder\.sa\.", "encoder.position_attention."),
    (r"^encoder\.sc\.", "encoder.channel_attention."),
    (r"^encoder\.conv_sa\.", "encoder.position_conv."),
    (r"^encoder\.conv_sc\.", "encoder.channel_conv."),
    (r"^encoder\.classifier\.", "encoder.project."),
    (r"^up_1_1\.", "drivable_head.0."),
    (r"^up_2_1\.", "drivable_head.1."),
    (r"^classifier_1\.", "drivable_head.2."),
    (r"^up_1_2\.", "lane_head.0."),
    (r"^up_2_2\.", "lane_head.1."),
    (r"^classifier_2\.", "lane_head.2."),
)


def rename(key: str) -> str:
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)  # type: ignore[arg-type]
    return key


def _load_module(name: str, path: Path) -> ModuleType:
    # By path, so the tool runs from a bare checkout without the package being installed.
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def convert(source: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The authors' state dict renamed onto `model`; raises ValueError on any mismatch."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        new = rename(key)
        if new in renamed:
            raise ValueError(f"two source keys map to '{new}'")
        renamed[new] = value
    target = model.state_dict()
    missing = sorted(set(target) - set(renamed))
    unexpected = sorted(set(renamed) - set(target))
    if missing or unexpected:
        raise ValueError(f"keys do not match: missing {missing[:8]}, unexpected {unexpected[:8]}")
    for key, value in target.items():
        if renamed[key].shape != value.shape or renamed[key].dtype != value.dtype:
            raise ValueError(f"'{key}': source {tuple(renamed[key].shape)} {renamed[key].dtype}, "
                             f"module {tuple(value.shape)} {value.dtype}")
    # The module's key order, so the file does not depend on the source's.
    return {key: renamed[key].clone().contiguous() for key in target}


def verify(model: torch.nn.Module, reference_dir: Path, tolerance: float) -> float:
    """Largest raw-output difference to the authors' outputs over the reference inputs."""
    files = sorted(reference_dir.glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no reference outputs in {reference_dir}")
    torch.set_flush_denormal(True)  # ~20x faster on CPUs; see the module's docstring
    worst = 0.0
    for file in files:
        data = np.load(file)
        image = torch.from_numpy(data["input_rgb"]).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            drivable, lanes = model(image)
        for name, ours in (("drivable_area", drivable), ("lanes", lanes)):
            diff = float(np.abs(ours.numpy() - data[name]).max())
            print(f"  {file.stem:<12} {name:<14} max |diff| {diff:.2e}")
            worst = max(worst, diff)
    if worst > tolerance:
        raise ValueError(f"converted model differs from the reference by {worst:.2e} > {tolerance}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src-dir", type=Path, default=DEFAULT_SRC_DIR,
                        help=f"folder with {SOURCE_WEIGHTS} and LICENSE (default: {DEFAULT_SRC_DIR})")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"where to write the weights and license (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with reference/*.npz")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="max abs raw-output difference accepted by the verification")
    args = parser.parse_args(argv)

    weights = args.src_dir / SOURCE_WEIGHTS
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"error: {weights} has sha256 {digest}, expected {SOURCE_SHA256} (the authors' file at "
              "commit 524141821c373c886443cf4254e3e87787c2c55e)", file=sys.stderr)
        return 1
    net = _load_module("_twinlitenet", REPO_ROOT / "seg_perception" / "models" / "twinlitenet.py")
    model = net.TwinLiteNet()
    state = convert(torch.load(weights, map_location="cpu", weights_only=True), model)
    model.load_state_dict(state)
    model.eval()

    if not args.no_verify:
        print("verifying against the authors' outputs:")
        worst = verify(model, args.src_dir / "reference", args.tolerance)
        print(f"largest difference {worst:.2e} (tolerance {args.tolerance})")

    out = args.out_dir / net.TWINLITENET_WEIGHTS
    buffer = io.BytesIO()
    torch.save(state, buffer)  # records no time: reruns are byte-identical
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(out)
    shutil.copyfile(args.src_dir / "LICENSE", args.out_dir / LICENSE_OUT)
    print(f"wrote {out} (sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}) and "
          f"{args.out_dir / LICENSE_OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
