"""Backends, tiler and video pipeline for ``sr-run`` (not implemented yet; see README). Never imports torch."""
