"""The SR model zoo: architectures, checkpoint reading, detection, descriptors.

``ModelDescriptor`` is torch-free; loading and building networks import torch lazily.
"""

from sredge.models.descriptor import ModelDescriptor

__all__ = ["ModelDescriptor"]
