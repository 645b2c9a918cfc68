"""Cost of hostile inputs to the ROS-free core, each in a fresh process: time and added peak RSS.

    python -m bench.hostile_inputs

Cases: a TIFF repeating ImageWidth/ImageLength (first 20000x15000, then 64x48, 292 KB deflated),
a TIFF with 3000 unknown tags (bytes libtiff logs for two decodes), a 443-byte YAML alias bomb
as a model description (time and error-text length). Run it against two checkouts to compare.
"""
from __future__ import annotations

import json
import subprocess
import sys

_CASES = {
    "tiff_repeated_size": """
from devtools.hostile import tiff
from seg_perception.wire.images import compressed_to_rgb
class M: format = "tiff"
m = M(); m.data = tiff(20000, 15000, extra_tags=[(256, 4, 64), (257, 4, 48)], data=bytes(20000 * 15000), deflate=True)
base = peak()
t = time.perf_counter()
try:
    compressed_to_rgb(m); outcome = "decoded"
except ValueError as exc:
    outcome = str(exc)[:120]
result = {"seconds": time.perf_counter() - t, "added_peak_mib": peak() - base, "outcome": outcome}
""",
    "yaml_alias_bomb": """
import pathlib, tempfile
from seg_perception.model.description import load_description
expr = '&a0 ["xxxxxxxx", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'
for i in range(1, 7):
    expr = f"&a{i} [{expr}, " + ", ".join([f"*a{i - 1}"] * 9) + "]"
path = pathlib.Path(tempfile.mkdtemp()) / "bomb.yaml"
path.write_text("input: {width: 8, height: 8}\\nclasses: [" + expr + ", " + ", ".join(["*a6"] * 9) + "]\\n")
base = peak()
t = time.perf_counter()
try:
    load_description(path); text = ""
except Exception as exc:
    text = str(exc)
result = {"file_bytes": path.stat().st_size, "seconds": time.perf_counter() - t, "error_chars": len(text),
          "added_peak_mib": peak() - base}
""",
}

_PRELUDE = """
import json, resource, time
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_TIFF_LOG = """
import sys
import cv2, numpy as np
from devtools.hostile import tiff
from seg_perception.wire.images import compressed_to_rgb
class M: format = "tiff"
m = M(); m.data = tiff(64, 48, extra_tags=[(40000 + i, 3, 1) for i in range(3000)])
for _ in range(2):
    try:
        compressed_to_rgb(m)
    except ValueError:
        pass
"""


def main() -> int:
    results = {}
    for name, body in _CASES.items():
        code = _PRELUDE + body + "\nprint(json.dumps(result))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    logged = subprocess.run([sys.executable, "-c", _TIFF_LOG], capture_output=True, text=True, check=True)
    results["tiff_unknown_tags"] = {"log_bytes_two_decodes": len(logged.stderr) + len(logged.stdout)}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
