"""Image arithmetic shared by export, runtime and benchmarks: colour, resizing, files (numpy only)."""
