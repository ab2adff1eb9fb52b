"""Calibration sets, INT8 Q/DQ quantization with a PSNR budget, FP16 conversion
(sr-calibrate, sr-export --precision).
"""
