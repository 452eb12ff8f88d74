"""Every command's ordinary mistakes end in one line on stderr and a non-zero exit, never a
traceback; `--debug` brings the traceback back."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cds_service.config import REPOSITORY, Settings
from cli.main import main
from storage.migrate import upgrade_database


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder of its own, and a service port where nothing listens."""
    folder = tmp_path / "data"
    monkeypatch.setenv("LHS_DATA_DIR", str(folder))
    monkeypatch.setenv("LHS_PORT", str(_free_port()))
    monkeypatch.delenv("LHS_DATABASE_URL", raising=False)
    monkeypatch.delenv("LHS_SERVICE_URL", raising=False)
    monkeypatch.delenv("LHS_PUBLIC_BASE_URL", raising=False)
    return folder


def _migrated(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    upgrade_database(f"sqlite:///{folder / 'lhs.db'}")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lhs ARGV`` run through the real entry point."""
    with pytest.raises(SystemExit) as ended:
        main(argv)
    captured = capsys.readouterr()
    return int(ended.value.code or 0), captured.out, captured.err


def bad_inputs(tmp: Path, *, write: bool = True) -> dict[str, tuple[list[str], str]]:
    """Command line -> a phrase the one-line error must contain (the files they read are
    written into ``tmp`` unless ``write`` is False)."""
    malformed = tmp / "malformed.json"
    request = tmp / "request.json"
    listing = tmp / "list.json"
    if write:
        malformed.write_text('{"context": ', encoding="utf-8")
        request.write_text(json.dumps({"context": {"patientId": "p1", "userId": "Practitioner/1"}}))
        listing.write_text("[1, 2]", encoding="utf-8")
    return {
        "call, no service running": (["call", "lhs-patient-view", str(request)], "cannot reach"),
        "call, missing file": (["call", "lhs-patient-view", str(tmp / "nope.json")], "nope.json"),
        "call, malformed file": (["call", "lhs-patient-view", str(malformed)], "not valid JSON"),
        "call, not an object": (["call", "lhs-patient-view", str(listing)], "no JSON object"),
        "example, unknown service": (["example", "lhs-nothing"], "no example for lhs-nothing"),
        "sweep, missing folder": (["sweep", str(tmp / "nowhere")], "no FHIR patient Bundles"),
        "sweep, bad date": (["sweep", str(tmp), "--as-of", "notadate"], "--as-of takes a date"),
        "explain, unknown card": (["explain", "no-such-card"], "no card with uuid"),
        "experiment start, missing file": (
            ["experiment", "start", str(tmp / "nope.yaml"), "--by", "me"],
            "nope.yaml",
        ),
        "shadow start, missing file": (
            ["shadow", "start", "s1", "--by", "me", "--rule-file", str(tmp / "nope.yaml")],
            "nope.yaml",
        ),
        "models promote, unknown version": (
            ["models", "promote", "readmission-30d", "999"],
            "no version 999",
        ),
        "models promote, unknown task": (["models", "promote", "nothing"], "unknown task"),
        "knowledge show, unknown rule": (["knowledge", "show", "no-such-rule"], "no rule"),
        "clients remove, unknown client": (["clients", "remove", "https://nobody"], "no client"),
    }


CASES = sorted(bad_inputs(Path("."), write=False))


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line_and_a_failing_exit(
    case: str, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _migrated(data_dir)
    argv, phrase = bad_inputs(tmp_path)[case]
    code, _, err = run(argv, capsys)
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert phrase in lines[0]


def test_a_missing_database_is_named_and_not_created(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["analytics"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: no database at {data_dir / 'lhs.db'}: run `lhs db upgrade` (or `make db`) first"
    ]
    assert not (data_dir / "lhs.db").exists()


def test_a_database_behind_the_code_says_how_to_migrate(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir(parents=True)
    upgrade_database(f"sqlite:///{data_dir / 'lhs.db'}", "0011")
    code, _, err = run(["analytics"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "error: the database is not migrated: run `lhs db upgrade` (or `make db`) first"
    ]


def test_every_command_finds_the_same_data_folder_wherever_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Set, then removed: the variable `--data-dir` sets is restored after the test.
    monkeypatch.setenv("LHS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LHS_DATA_DIR")
    monkeypatch.delenv("LHS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == REPOSITORY / "data"  # not ./data of wherever one stands
    folder = tmp_path / "elsewhere"
    code, out, _ = run(["--data-dir", str(folder), "db", "upgrade"], capsys)
    assert code == 0 and "database at revision" in out
    monkeypatch.chdir(folder.parent.parent)
    code, out, _ = run(["--data-dir", str(folder), "analytics"], capsys)
    assert code == 0
    assert out.strip() == "No hook calls and no cards in this period."


def test_debug_shows_the_traceback(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FileNotFoundError):
        main(["--debug", "call", "lhs-patient-view", str(tmp_path / "nope.json")])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out == f"lhs {version('learning-health-system')}\n"
