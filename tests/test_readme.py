"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)
    assert (tmp_path / "softmax.pl").is_file() and (tmp_path / "softmax.json").is_file()


def test_readme_names_exist():
    """Every `mofn2logic.NAME` the README mentions is part of the public API."""
    import mofn2logic

    names = set(re.findall(r"\bmofn2logic\.([a-z_][a-z_0-9]*)\b", README.read_text()))
    modules = {"exporters", "grammars", "ir", "search", "engines", "onnx", "program", "report"}
    assert names - modules <= set(mofn2logic.__all__), sorted(names - modules - set(mofn2logic.__all__))
