"""Keyed pseudonyms for patients: analytics link a patient's calls without storing their id."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr


def patient_key(secret: bytes, fhir_server: str | None, patient_id: str) -> str:
    """HMAC-SHA256 of the FHIR server and patient id (ids from different EHRs never collide)."""
    message = f"{fhir_server or ''}\x1f{patient_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, or create one with 32 random bytes readable only by its owner."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # O_EXCL: if another worker created it meanwhile, use theirs rather than overwrite.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


def site_pseudonym_key(configured: SecretStr | None, data_dir: Path) -> bytes:
    """The configured key (``LHS_PSEUDONYM_KEY``), else the trial key file in the data folder."""
    if configured is not None:
        return configured.get_secret_value().encode()
    return load_or_create_key(data_dir / "pseudonym.key")
