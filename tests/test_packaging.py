"""`pip install .` builds a wheel that maps the root folders into the neurogrs namespace."""
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_maps_folders_into_the_namespace_and_imports(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    wheel = next((tmp_path / "dist").glob("neurogrs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"neurogrs", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for mod in ("stream", "inference", "codegen", "replay", "pruning"):
        assert f"neurogrs/{mod}/__init__.py" in names
    assert "neurogrs/codegen/templates/decoder.c.tmpl" in names
    # import from the unpacked wheel alone (no .pth processing: the editable finder is off)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; "
        f"sys.path[:0] = [{str(site)!r}, {sysconfig.get_paths()['purelib']!r}]; "
        "import neurogrs, neurogrs.inference, neurogrs.stream, neurogrs.codegen, neurogrs.replay; "
        "from neurogrs.cli import build_parser; build_parser(); print(neurogrs.__file__)"
    )
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(str(site))


def test_build_prints_no_packaging_warnings(tmp_path):
    """What `pip install .` shows a user: no deprecated license table, no data directory
    missing from `packages` (the build runs isolated, with the setuptools pyproject asks for)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    for noise in ("BuildBackendWarning", "deprecated", "absent from the `packages`"):
        assert noise not in text, text[-3000:]
    wheel = next((tmp_path / "dist").glob("neurogrs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "neurogrs/codegen/templates/decoder.c.tmpl" in names
    for page_file in ("index.html", "dashboard.js", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"):
        assert f"neurogrs/stream/static/{page_file}" in names  # the live page works offline
    meta = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta
