"""AI tools: a reviewed catalogue of MONAI bundles, rebuilt from their model cards and loaded safely (README.md)."""
