"""All configuration in one pydantic-settings object, read from ``LHS_*`` environment variables."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.library import KNOWLEDGE_DIR
from models.registry import MlflowLocation

REPOSITORY = Path(__file__).resolve().parents[1]
FULL_PATIENT_SET = REPOSITORY.parent / "shared" / "fhir" / "synthea"
"""The 528 synthetic patients, where a checkout has them beside it (optional)."""
SAMPLE_PATIENTS = REPOSITORY / "sample_data" / "synthea"
"""The sample the repository carries (sample_data/README.md)."""


MIN_PSEUDONYM_KEY_LENGTH = 32


def default_data_dir() -> Path:
    """``data/`` in the checkout when the code runs from one, else the platform's per-user data
    folder: the same folder whichever directory a command is run from."""
    if (REPOSITORY / "pyproject.toml").is_file():
        return REPOSITORY / "data"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "lhs"


def default_patients() -> Path:
    """The full set of synthetic patients when it is there, else the repository's sample."""
    return FULL_PATIENT_SET if FULL_PATIENT_SET.is_dir() else SAMPLE_PATIENTS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LHS_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for the embedded SQLite database, the MLflow store, the spool, the "
        "client registry and the pseudonym key. Default: data/ in the checkout when run from "
        "one, else $XDG_DATA_HOME/lhs (~/.local/share/lhs). `lhs --data-dir` sets it too.",
    )
    knowledge_dir: Path = Field(
        KNOWLEDGE_DIR,
        description="The knowledge library (rules, archive, value sets, experiments); approved "
        "change proposals are installed here. Default: the one shipped with the service.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/lhs.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    pseudonym_key: SecretStr | None = Field(
        None,
        description="Secret for keyed patient pseudonyms (HMAC-SHA256), at least 32 characters. "
        "If unset, a random key is created in <data_dir>/pseudonym.key (fine for a trial, not "
        "for production).",
    )
    auth: Literal["on", "off"] = Field(
        "on",
        description="Require a CDS client JWT on every request (CDS Hooks 2.0). `off` is for local trials only.",
    )
    public_base_url: str | None = Field(
        None,
        description="The service's external base URL (e.g. https://cds.example.org); JWT `aud` must be "
        "this plus the endpoint path. Unset: taken from each request's scheme and host.",
    )
    clients_file: Path | None = Field(
        None,
        description="Registry of trusted CDS clients (`lhs clients`); default <data_dir>/clients.json.",
    )
    fhir_servers: list[str] = Field(
        default_factory=list,
        description="With auth off only: the FHIR base URLs a request may name in `fhirServer` "
        '(JSON list, e.g. ["https://ehr.example.org/fhir"]); empty: any. With auth on, each '
        "client's registration lists its own (`lhs clients add --fhir-server`).",
    )
    redis_url: str | None = Field(
        None, description="Redis URL for the JWT replay cache; unset: the database keeps it."
    )
    jwt_leeway_seconds: int = Field(60, ge=0, description="Clock skew tolerated on exp and iat.")
    host: str = Field("127.0.0.1", description="Address `lhs serve` binds to.")
    port: int = Field(8000, description="Port `lhs serve` listens on.")
    fhir_timeout: float = Field(
        2.0, gt=0, description="Seconds per request to the EHR's FHIR server."
    )
    fetch_deadline: float = Field(
        4.0,
        gt=0,
        description="Seconds a hook call may spend fetching from the FHIR server; what is not "
        "in by then is reported as not checked, and the cards that can be computed are returned.",
    )
    fhir_max_pages: int = Field(
        20, ge=1, description="Most Bundle pages followed per prefetch query."
    )
    evaluation_time: datetime | None = Field(
        None,
        description="Fixed 'now' for evaluating rules (replaying historical data such as the "
        "synthetic patients, whose records end in 2021). Unset: the real time.",
    )
    max_body_bytes: int = Field(
        5_000_000, gt=0, description="Largest request body accepted (413 above it)."
    )
    spool_drain_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between attempts to replay spooled writes into the database.",
    )
    spool_ready_limit: int = Field(
        1000,
        gt=0,
        description="`/readyz` answers 503 while this many spooled writes (or more) wait for the database.",
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="How long a SQLite write waits for a lock before it is spooled."
    )
    override_suppression_days: int = Field(
        30,
        ge=0,
        description="After a clinician overrides a card, the same rule's card for the same patient and "
        "the same triggering data is not shown again for this many days (critical cards always are).",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking and registry URI, e.g. http://mlflow.internal:5000 (a server "
        "backed by PostgreSQL). Unset: an embedded store, sqlite:///<data_dir>/mlflow/mlflow.db "
        "with artifacts in <data_dir>/mlflow/artifacts.",
    )
    model_refresh_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the service asks the registry whether @champion moved to another "
        "version (then it loads that version and swaps it in without dropping requests).",
    )
    fhir_sync_token: SecretStr | None = Field(
        None,
        description="Bearer token `lhs sync` and `lhs bulk export` present to the EHR's FHIR "
        "server (a system-level SMART Backend Services token with read access to outcome "
        "resources).",
    )
    label_interval_seconds: float = Field(
        300.0,
        gt=0,
        description="How often served predictions whose outcome window has closed are labelled "
        "from the outcomes received (and relabelled when late outcomes arrive).",
    )
    surveillance_interval_seconds: float = Field(
        300.0,
        gt=0,
        description="How often outbreak detection runs over what the feed brought since the "
        "last run (EARS C1/C2/C3 daily and Farrington weekly, per syndrome and area; new "
        "signals reach patient-view cards at once).",
    )
    training_data: Path = Field(
        default_factory=default_patients,
        description="Folder of FHIR patient Bundles that `lhs train` (and the first `make run`) "
        "learns from and `lhs sweep` runs over. Default: ../shared/fhir/synthea beside the "
        "repository when present, else the repository's sample_data/synthea.",
    )

    spark_master: str = Field(
        "local[2]",
        description="Where `--engine spark` computations run (the cohort and features of "
        "`lhs train`, the counts of `lhs bulk surveillance`): local[N] for N cores of this "
        "machine, or a cluster's master URL (spark://host:7077, yarn, k8s://...).",
    )

    @field_validator("pseudonym_key")
    @classmethod
    def _key_long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        # An HMAC-SHA256 key shorter than the hash's 32 bytes weakens it (NIST SP 800-107r1 5.3.4),
        # and a short memorable string can be guessed, turning every pseudonym back into an id.
        if key is not None and len(key.get_secret_value()) < MIN_PSEUDONYM_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_PSEUDONYM_KEY_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        return key

    @property
    def resolved_clients_file(self) -> Path:
        return self.clients_file or self.data_dir / "clients.json"

    @property
    def mlflow(self) -> MlflowLocation:
        if self.mlflow_tracking_uri:
            location = MlflowLocation(self.mlflow_tracking_uri)
            database = location.embedded_database
            # A SQLite store keeps its artifacts beside it (MLflow's default would be ./mlruns
            # in whatever folder the command ran from); a tracking server decides for itself.
            return (
                MlflowLocation(self.mlflow_tracking_uri, database.parent / "artifacts")
                if database
                else location
            )
        folder = (self.data_dir / "mlflow").resolve()
        return MlflowLocation(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'lhs.db'}"
