"""PyTorch -> ONNX export, parity checks against PyTorch, and TensorRT engine building."""
