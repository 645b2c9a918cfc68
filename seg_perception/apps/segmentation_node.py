"""`ros2 run seg_perception segmentation_node`: the lifecycle node in its own process."""
from __future__ import annotations

import sys

from ..ros.node import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
