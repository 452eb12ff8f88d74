"""`make demo` stays true: one short round of the simulated clinic, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.shared_data import require_shared

ROOT = Path(__file__).resolve().parents[1]


def test_the_simulated_clinic_runs_a_round_of_the_learning_loop(tmp_path):
    require_shared()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.clinic",
            "--rounds",
            "1",
            "--patients",
            "40",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert "first model: v1 @champion" in out
    row = next(line for line in out.splitlines() if line.startswith("1 "))
    assert row.split()[1:3] == ["v1", "40"]  # served by v1, 40 calls answered
    assert "v2: " in row  # a challenger was trained and the gate decided
    report = tmp_path / "demo" / "learning-report.html"
    assert report.read_text().count("data:image/png;base64,") >= 1
