"""The README's Python example runs as written and prints what the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_python_api_example_runs_and_its_printed_figures_match(
    tmp_path: Path, data_dir: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", python_example()],
        cwd=tmp_path,
        env=dict(os.environ, HF_HUB_OFFLINE="1", MODALCHORUS_DATA_DIR=str(data_dir)),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Figures within 0.01 of the README's: float sums vary a little with the thread count.
    line = r"(mfm|tsne): inter-modal T ([0-9.]+), C ([0-9.]+)"
    said = re.findall(f"`{line}`", README.read_text())
    got = re.findall(line, result.stdout)
    assert [name for name, *_ in got] == [name for name, *_ in said] == ["mfm", "tsne"]
    for (_, *ours), (_, *theirs) in zip(got, said, strict=True):
        assert all(abs(float(a) - float(b)) <= 0.01 for a, b in zip(ours, theirs, strict=True))
    assert sorted(p.suffix for p in (tmp_path / "coco-map").iterdir()) == [".json", ".safetensors"]
