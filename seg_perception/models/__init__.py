"""Built-in networks (their torch modules and bundled weights): the MediaPipe selfie model and
TwinLiteNet (drivable area + lanes). Found by name through `model.builtin`.

May import: torch, numpy. Nothing else of seg_perception.
"""
