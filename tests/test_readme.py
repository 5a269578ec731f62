"""The README's Python example runs as written, on a new store and again on the same store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```python\n(.*?)```", readme, re.S)
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    for run in (1, 2):
        r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        counts = r.stdout.splitlines()[0].split()
        now, at_lock = int(counts[0]), int(counts[1])
        assert now == at_lock + (1 if run == 1 else 0)  # the follow-up recorded after the lock
        assert "estimate" in r.stdout  # the Kaplan-Meier table
