"""Command-line tools: thin wrappers over the library; each command is one module."""
