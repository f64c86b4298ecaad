"""cnnbench: a comparative benchmarking and profiling harness for classic CNNs.

The pipeline, one file a job: ``models`` (names and shapes) -> ``analysis``
(static params, MACs, memory on the meta device) -> ``environment`` (what a
figure was measured on) -> ``table`` (rendering) -> ``cli``.
"""

__version__ = "0.1.0"
