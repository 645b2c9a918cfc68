#!/usr/bin/env python3
"""Fetch the MediaPipe Selfie Segmentation TFLite models and their license from PyPI.

The models ship inside the ``mediapipe`` wheel; we download that one pinned wheel with pip (no
dependencies, binary only) and extract just the two ``.tflite`` files and the wheel's LICENSE.
The wheel's platform tags are pinned as well, so every machine gets the same file whatever its
own Python or OS, and the extracted models are checked against recorded sha256 sums.

    python tools/fetch_mediapipe_selfie.py [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / "build" / "mediapipe_selfie"

MEDIAPIPE_VERSION = "0.10.21"
WHEEL_NAME = f"mediapipe-{MEDIAPIPE_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
# pip's platform selectors that resolve to exactly WHEEL_NAME.
_PIP_PLATFORM_ARGS = [
    "--platform", "manylinux_2_28_x86_64",
    "--python-version", "3.11",
    "--implementation", "cp",
    "--abi", "cp311",
]

_MODULE_DIR = "mediapipe/modules/selfie_segmentation"
LICENSE_MEMBER = f"mediapipe-{MEDIAPIPE_VERSION}.dist-info/LICENSE"
LICENSE_FILE = "LICENSE"

#: Extracted model file name -> sha256 of its contents, per variant.
MODEL_FILES: dict[str, tuple[str, str]] = {
    "square": (
        "selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    ),
    "landscape": (
        "selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    ),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _result_paths(dest: Path) -> dict[str, Path]:
    paths = {variant: dest / name for variant, (name, _) in MODEL_FILES.items()}
    paths["license"] = dest / LICENSE_FILE
    return paths


def _already_fetched(dest: Path) -> bool:
    if not (dest / LICENSE_FILE).is_file():
        return False
    return all(
        (dest / name).is_file() and sha256_of(dest / name) == sha
        for name, sha in MODEL_FILES.values()
    )


def _download_wheel(into: Path) -> Path:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download",
            "--no-deps", "--only-binary=:all:", *_PIP_PLATFORM_ARGS,
            f"mediapipe=={MEDIAPIPE_VERSION}",
            "-d", str(into),
        ],
        check=True,
    )
    wheel = into / WHEEL_NAME
    if not wheel.is_file():
        raise RuntimeError(f"pip did not produce {WHEEL_NAME} in {into}")
    if sha256_of(wheel) != WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name} does not have the recorded sha256 {WHEEL_SHA256}")
    return wheel


def fetch(dest_dir: Path | str = DEFAULT_DEST) -> dict[str, Path]:
    """Make ``dest_dir`` hold both selfie models and the MediaPipe LICENSE; download if needed.

    Returns the paths keyed "square", "landscape" and "license". Does nothing when the files are
    already there with the expected checksums.
    """
    dest = Path(dest_dir)
    if _already_fetched(dest):
        return _result_paths(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mediapipe_wheel_") as tmp:
        wheel = _download_wheel(Path(tmp))
        members = {f"{_MODULE_DIR}/{name}": name for name, _ in MODEL_FILES.values()}
        members[LICENSE_MEMBER] = LICENSE_FILE
        with zipfile.ZipFile(wheel) as archive:
            for member, name in members.items():
                # Write then rename, so an interrupted run never leaves a truncated model that
                # a later run would have to notice.
                partial = dest / f".{name}.partial"
                partial.write_bytes(archive.read(member))
                partial.replace(dest / name)
    for name, sha in MODEL_FILES.values():
        actual = sha256_of(dest / name)
        if actual != sha:
            raise RuntimeError(f"{dest / name}: sha256 {actual}, expected {sha}")
    return _result_paths(dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help=f"output directory (default: {DEFAULT_DEST})"
    )
    args = parser.parse_args(argv)
    for key, path in fetch(args.dest).items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
