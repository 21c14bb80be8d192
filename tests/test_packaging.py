"""The package installs as designed: `exporters/` and `grammars/` become mofn2logic.exporters and
mofn2logic.grammars, from a wheel and from an editable install, each in a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import json, mofn2logic, mofn2logic.exporters as e, mofn2logic.grammars as g; "
    "from importlib import resources; "
    "print(json.dumps({'pkg': mofn2logic.__file__, 'exporters': e.__file__, 'grammars': g.__file__, "
    "'lark': sorted(p.name for p in resources.files('mofn2logic.grammars').iterdir() if p.name.endswith('.lark')), "
    "'model': resources.files('mofn2logic').joinpath('data/default_cnn.onnx').is_file(), "
    "'typed': resources.files('mofn2logic').joinpath('py.typed').is_file()}))"
)


def _fresh_venv(where: Path) -> Path:
    """A new venv that borrows the dependencies (not mofn2logic) from the running one."""
    venv.EnvBuilder(with_pip=True).create(where)
    py = where / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # A path line in a .pth is added to sys.path after the venv's own site-packages, and the
    # running venv's editable-install hooks (.pth files there) are not executed.
    Path(site, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # venv seeds an old setuptools; drop it so the build uses the running venv's (>= 64).
    subprocess.run([py, "-m", "pip", "uninstall", "-q", "-y", "setuptools"], capture_output=True)
    return py


def _probe(py: Path) -> dict:
    import json

    out = subprocess.run([py, "-c", PROBE], capture_output=True, text=True, cwd="/", check=True).stdout
    return json.loads(out)


def _pip(py: Path, *args: str) -> None:
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", *args], check=True, capture_output=True)


@pytest.mark.slow
def test_wheel_in_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist,
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(dist.glob("mofn2logic-*.whl"))
    py = _fresh_venv(tmp_path / "venv")
    _pip(py, str(wheel))
    info = _probe(py)
    site = str(tmp_path / "venv")
    assert info["pkg"].startswith(site) and info["exporters"].startswith(site) and info["grammars"].startswith(site)
    assert info["exporters"].endswith("mofn2logic/exporters/__init__.py")
    assert info["lark"] and info["model"] and info["typed"]
    script = tmp_path / "venv" / "bin" / "mofn2logic"
    proc = subprocess.run([script, "inspect", "--json", info["pkg"].replace("__init__.py", "data/default_cnn.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and '"kind": "conv"' in proc.stdout


@pytest.mark.slow
def test_editable_in_fresh_venv(tmp_path):
    py = _fresh_venv(tmp_path / "venv")
    _pip(py, "-e", str(ROOT))
    info = _probe(py)
    assert info["exporters"] == str(ROOT / "exporters" / "__init__.py")
    assert info["grammars"] == str(ROOT / "grammars" / "__init__.py")
    assert info["lark"] and info["model"]


def test_gpu_extra_never_pulls_onnxruntime_gpu():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    everything = [*meta["dependencies"], *(d for ds in meta.get("optional-dependencies", {}).values() for d in ds)]
    assert not any(d.replace("_", "-").startswith("onnxruntime-gpu") for d in everything)
