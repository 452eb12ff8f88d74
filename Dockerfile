# Slim image of the CDS service, installed from the same lock file as `make run`.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LHS_DATA_DIR=/var/lib/lhs \
    LHS_HOST=0.0.0.0 \
    LHS_PORT=8000

WORKDIR /app
COPY requirements.lock ./
RUN python -m pip install --upgrade 'pip>=24' && python -m pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY hooks ./hooks
COPY fhir_client ./fhir_client
COPY knowledge ./knowledge
COPY models ./models
COPY evaluation ./evaluation
COPY storage ./storage
COPY point_of_care ./point_of_care
COPY learning ./learning
COPY cds_service ./cds_service
COPY cli ./cli
RUN python -m pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/lhs --create-home lhs

USER lhs
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

# Migrations are applied at start (idempotent); with several replicas run `lhs db upgrade` once instead.
# Models come from the registry at LHS_MLFLOW_TRACKING_URI; without one the rules answer alone.
CMD ["sh", "-c", "lhs db upgrade && exec lhs serve"]
