"""The seg_perception benchmark suite: `make bench` (see bench/README.md).

Modules: `measures` (pure statistics and targets), `report` (tables), `inprocess` (bare model
and core pipeline timings), `heavy_model` (the calibrated overload model), `dds` (node and
transport round trips over DDS), `echo_node` (the transport-floor echo process), `procstat`
(RSS of a process), `hotspots` (cProfile of the per-frame paths), `run` (the command).
"""
