# The CDS service, installed from the runtime lock (the versions `make run` uses, without the
# development tools). Build: docker build -t lhs .   Trial: see README "Docker".

# --- build: a virtual environment with the locked dependencies and the service ----------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/lhs
COPY requirements.runtime.lock /tmp/
RUN /opt/lhs/bin/pip install --no-deps -r /tmp/requirements.runtime.lock

WORKDIR /src
COPY pyproject.toml README.md ./
COPY hooks ./hooks
COPY fhir_client ./fhir_client
COPY knowledge ./knowledge
COPY evaluation ./evaluation
COPY models ./models
COPY population ./population
COPY storage ./storage
COPY point_of_care ./point_of_care
COPY learning ./learning
COPY cds_service ./cds_service
COPY cli ./cli
RUN /opt/lhs/bin/pip install --no-deps .

# --- runtime: the environment, the sample patients a first model learns from, no build tools ---
FROM python:3.11-slim AS runtime

ENV PATH=/opt/lhs/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LHS_DATA_DIR=/var/lib/lhs \
    LHS_TRAINING_DATA=/opt/lhs/sample_data/synthea \
    LHS_HOST=0.0.0.0 \
    LHS_PORT=8000

COPY --from=build /opt/lhs /opt/lhs
COPY sample_data/synthea /opt/lhs/sample_data/synthea
COPY sample_data/README.md /opt/lhs/sample_data/README.md
RUN useradd --system --uid 10001 --home-dir /var/lib/lhs --create-home lhs

USER 10001
WORKDIR /var/lib/lhs
# The database, MLflow store, spool, client registry and pseudonym key: keep them across
# containers (docker run -v lhs-data:/var/lib/lhs ...).
VOLUME ["/var/lib/lhs"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('LHS_PORT', '8000')}/healthz\", timeout=2).status != 200)"]

# Migrate the embedded database, train a first model on the sample if none is registered, serve.
# With PostgreSQL and several replicas, run `lhs db upgrade` once instead (see docker-compose.yml).
CMD ["sh", "-c", "lhs db upgrade && lhs models ensure && exec lhs serve"]
