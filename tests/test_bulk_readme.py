"""The README's Bulk Data and Spark commands run as printed (in a temporary data folder)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_bulk_data_and_spark_commands_run_as_printed(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Bulk Data and Spark", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    script = script.replace("/tmp/", f"{tmp_path}/")
    script = script.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    env = os.environ | {
        "LHS_DATA_DIR": str(tmp_path / "data"),
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }
    completed = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr[-3000:])
    out = completed.stdout
    assert "building the cohort on Spark (local[2])" in out
    assert "registered lhs-readmission-30d version 1 as @champion" in out
    assert "cases counted on spark" in out
    assert "rejected 0" in out
