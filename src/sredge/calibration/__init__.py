"""Calibration sets and INT8 Q/DQ quantization (not implemented yet; see README)."""
