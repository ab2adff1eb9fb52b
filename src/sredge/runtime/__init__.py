"""What ``sr-run`` runs on: backends, the tiler, the video pipeline, image and video runs. Never imports torch.

The runtime depends on :mod:`sredge.imaging` and :mod:`sredge.models`, never on the benchmarks or the CLI.
"""
