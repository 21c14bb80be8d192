"""The version of mofn2logic: the one source (pyproject.toml must say the same; a test checks)."""

__version__ = "0.1.0"
