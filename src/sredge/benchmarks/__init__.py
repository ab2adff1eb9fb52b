"""Quality metrics and (later) latency and regression reports."""
