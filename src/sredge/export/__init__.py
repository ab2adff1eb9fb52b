"""PyTorch -> ONNX export, parity checks against PyTorch, and (later) engine building."""
