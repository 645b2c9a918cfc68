"""Point the ROS 2 wheels' exported CMake files at this interpreter's include dirs.

The wheels were built in a manylinux container; their CMake exports name that container's Python
and numpy include dirs (/opt/python/cpXY-cpXY/...), and CMake configure fails with "includes
non-existent path" until they name this venv's. Run with the venv's Python after pip install.
"""
import glob
import os
import re
import sysconfig

import numpy

data = sysconfig.get_paths()["data"]
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
# numpy 1.x has numpy/core/include, 2.x numpy/_core/include: whichever the wheel was built with.
numpy_inc = re.compile(r"/opt/python/cp\d+-cp\d+/lib/python3\.\d+/site-packages/numpy/_?core/include")
python_inc = re.compile(r"/opt/python/cp\d+-cp\d+/include/python3\.\d+")
for path in glob.glob(os.path.join(data, "share", "**", "*.cmake"), recursive=True):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if "/opt/python/cp" not in text:
        continue
    text = python_inc.sub(py_inc, numpy_inc.sub(np_inc, text))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
