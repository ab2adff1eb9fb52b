"""Training small SR networks (``sr-train``): patch data, the training loop, checkpoints (imports torch)."""
