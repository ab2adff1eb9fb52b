"""sredge: super-resolution networks from PyTorch to the edge.

Importing the package is cheap and torch-free: the model zoo and the exporter
import torch lazily, only when a checkpoint is actually loaded or exported.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
