"""A client for a FHIR server's Bulk Data ``$export`` (HL7 FHIR Bulk Data Access IG, v2:
https://hl7.org/fhir/uv/bulkdata/export.html).

The flow the IG sets out:

1. **Kick-off.** ``GET [base]/$export`` (or ``Patient/$export``, ``Group/[id]/$export``)
   with ``Accept: application/fhir+json`` and ``Prefer: respond-async``, optional
   ``_type`` and ``_since``. The server answers ``202 Accepted`` with the status URL in
   ``Content-Location``, or an error with an OperationOutcome.
2. **Status.** ``GET`` the status URL until it is done: ``202`` while in progress (with
   ``X-Progress`` and ``Retry-After``, which the client honours, as it honours ``429``),
   ``200`` with the manifest (``transactionTime``, ``requiresAccessToken``, ``output``,
   ``error``) when complete, or ``4xx``/``5xx`` with an OperationOutcome when the export
   failed (an outcome whose issues are all ``transient`` is retried).
3. **Download.** Each output file is fetched with ``Accept: application/fhir+ndjson`` and,
   only when the manifest says ``requiresAccessToken``, with the bearer token (files may
   sit on another host, such as a signed-URL object store, which must not see the token).
   Files are streamed to disk, never held in memory, and named ``Type.000.ndjson`` ... so
   that the folder is what ``lhs bulk import`` and ``lhs train --data`` read. Error files
   (OperationOutcome NDJSON) go to ``error/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from fhir_client.fhirdates import as_utc

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
DEFAULT_POLL_SECONDS = 2.0
"""The wait between status requests when the server gives no Retry-After."""
MAX_POLL_SECONDS = 120.0
"""The longest wait honoured between two status requests."""


class BulkExportError(RuntimeError):
    """The export was refused or failed (the message is the server's OperationOutcome)."""


@dataclass(frozen=True)
class OutputFile:
    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class Manifest:
    transaction_time: str
    requires_access_token: bool
    output: list[OutputFile]
    error: list[OutputFile] = field(default_factory=list)


@dataclass(frozen=True)
class ExportRequest:
    types: Sequence[str] = ()
    """``_type``: the resource types to export (all the server allows when empty)."""
    since: datetime | None = None
    """``_since``: only resources changed after this moment (an instant: UTC if naive)."""
    group: str | None = None
    """Export a Group's patients (``Group/[id]/$export``); None: every patient."""
    system: bool = False
    """A system-level export (``[base]/$export``) instead of ``Patient/$export``."""

    def path(self) -> str:
        if self.group is not None:
            return f"Group/{self.group}/$export"
        return "$export" if self.system else "Patient/$export"

    def params(self) -> dict[str, str]:
        params = {"_outputFormat": FHIR_NDJSON}
        if self.types:
            params["_type"] = ",".join(self.types)
        if self.since is not None:
            params["_since"] = as_utc(self.since).isoformat(timespec="seconds")
        return params


@dataclass(frozen=True)
class DownloadedFile:
    type: str
    path: Path
    lines: int


def outcome_message(response: httpx.Response) -> str:
    """The diagnostics of an OperationOutcome body, else the HTTP status."""
    issues = _issues(response)
    details = "; ".join(
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
        for i in issues
    )
    return f"HTTP {response.status_code}" + (f": {details}" if details else "")


def _issues(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    return [i for i in body.get("issue") or [] if isinstance(i, dict)]


def _is_transient(response: httpx.Response) -> bool:
    issues = _issues(response)
    return bool(issues) and all(i.get("code") == "transient" for i in issues)


def retry_after(response: httpx.Response, default: float, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header (delay seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_POLL_SECONDS)


def parse_manifest(body: object) -> Manifest:
    if not isinstance(body, dict) or not isinstance(body.get("output"), list):
        raise BulkExportError("the completed export's manifest has no output list")

    def files(key: str) -> list[OutputFile]:
        return [
            OutputFile(str(item["type"]), str(item["url"]), item.get("count"))
            for item in body.get(key) or []
            if isinstance(item, dict) and item.get("type") and item.get("url")
        ]

    return Manifest(
        transaction_time=str(body.get("transactionTime", "")),
        requires_access_token=bool(body.get("requiresAccessToken")),
        output=files("output"),
        error=files("error"),
    )


class BulkExportClient:
    """Kick-off, status polling and download against one FHIR server.

    ``sleep`` waits between status requests (replaced in tests); ``max_wait`` bounds the
    total time spent waiting for the export to complete.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 6 * 3600.0,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = http or httpx.Client(timeout=60.0, follow_redirects=False)
        self._sleep = sleep
        self._max_wait = max_wait
        self._progress = progress

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def kick_off(self, request: ExportRequest) -> str:
        """Start the export; the status URL."""
        response = self._http.get(
            f"{self.base_url}/{request.path()}",
            params=request.params(),
            headers={"Accept": FHIR_JSON, "Prefer": "respond-async", **self._auth()},
        )
        if response.status_code != 202:
            raise BulkExportError(f"export kick-off refused: {outcome_message(response)}")
        location = response.headers.get("Content-Location")
        if not location:
            raise BulkExportError("export kick-off accepted without a Content-Location")
        return str(response.url.join(location))

    def wait(self, status_url: str) -> Manifest:
        """Poll the status URL until the export completes; its manifest."""
        waited = 0.0
        while True:
            response = self._http.get(
                status_url, headers={"Accept": "application/json", **self._auth()}
            )
            if response.status_code == 200:
                return parse_manifest(response.json())
            in_progress = response.status_code in (202, 429) or (
                response.status_code >= 500 and _is_transient(response)
            )
            if not in_progress:
                raise BulkExportError(f"export failed: {outcome_message(response)}")
            pause = retry_after(response, DEFAULT_POLL_SECONDS)
            if waited + pause > self._max_wait:
                raise BulkExportError(f"export not complete after {waited:.0f} s")
            if response.status_code == 202:
                self._progress(f"in progress: {response.headers.get('X-Progress', '...')}")
            self._sleep(pause)
            waited += pause

    def download(self, manifest: Manifest, folder: Path) -> list[DownloadedFile]:
        """Each output file (and error file, into ``error/``) streamed into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        headers = {
            "Accept": FHIR_NDJSON,
            **(self._auth() if manifest.requires_access_token else {}),
        }
        done: list[DownloadedFile] = []
        for files, target in ((manifest.output, folder), (manifest.error, folder / "error")):
            numbers: dict[str, int] = {}
            for item in files:
                number = numbers[item.type] = numbers.get(item.type, -1) + 1
                target.mkdir(parents=True, exist_ok=True)
                path = target / f"{item.type}.{number:03d}.ndjson"
                done.append(DownloadedFile(item.type, path, self._fetch(item.url, headers, path)))
        return done

    def _fetch(self, url: str, headers: dict[str, str], path: Path) -> int:
        lines = 0
        with self._http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise BulkExportError(f"download of a file failed: {outcome_message(response)}")
            with path.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                    lines += chunk.count(b"\n")
        return lines

    def export(self, request: ExportRequest, folder: Path) -> tuple[Manifest, list[DownloadedFile]]:
        """Kick off, wait for and download one export."""
        manifest = self.wait(self.kick_off(request))
        return manifest, self.download(manifest, folder)

    def close(self) -> None:
        self._http.close()
