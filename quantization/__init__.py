"""quantization: filled in by issue 5 (see README.md in this folder)."""
