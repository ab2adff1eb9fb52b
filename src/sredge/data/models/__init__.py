"""Bundled default models (``sredge_x{scale}.onnx``) and their measured figures (``models.json``).

Made by sredge itself: ``python tools/bundle_models.py`` trains them with ``sr-train`` on T91,
exports them with ``sr-export`` and measures them; see README.md.
"""
