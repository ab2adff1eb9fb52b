"""One module per architecture: its ``nn.Module``, ``detect`` and ``ARCH`` spec (imports torch)."""
