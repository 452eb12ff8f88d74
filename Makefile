# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help install run db models mlflow demo test lint format lock clean bench bench-scale soak wrk docker-check
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | awk -F '\t' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=24'
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the locked dependencies

db: install  ## create or migrate the embedded SQLite database (or LHS_DATABASE_URL)
	$(BIN)/lhs db upgrade

models: db  ## train and register a first readmission model if the MLflow store has no @champion
	$(BIN)/lhs models ensure

run: models  ## start the service on 127.0.0.1:8000 (authentication off: a local trial)
	LHS_AUTH=$${LHS_AUTH:-off} $(BIN)/lhs serve

demo: db  ## the simulated clinic: rounds of discharges, feedback, outcomes, retraining, gate (on ../shared or sample_data); DEMO_ARGS=--outbreak: surveillance
	$(BIN)/python -m demo.clinic $(DEMO_ARGS)

mlflow: install  ## the MLflow UI on 127.0.0.1:5000 over the service's tracking store
	$(BIN)/lhs mlflow

test: install  ## lint, validate the knowledge library and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lhs knowledge validate
	$(BIN)/pytest

lint: install  ## ruff
	$(BIN)/ruff check .

format: install  ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock:  ## re-resolve requirements.lock and requirements.runtime.lock from pyproject.toml in a scratch venv
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade 'pip>=24'
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^learning-health-system' > requirements.lock
	# The runtime lock (the Docker image's): the same versions, without the development tools.
	.lock-venv/bin/python -m pip install --quiet --dry-run --ignore-installed --report .lock-report.json -c requirements.lock .
	.lock-venv/bin/python -c 'import json; r = json.load(open(".lock-report.json")); print("\n".join(sorted((i["metadata"]["name"] + "==" + i["metadata"]["version"] for i in r["install"] if i["metadata"]["name"] != "learning-health-system"), key=str.lower)))' > requirements.runtime.lock
	rm -rf .lock-venv .lock-report.json build *.egg-info

clean:  ## remove the venv and build files (not the data folder)
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

wrk:  # the external load generator of `make bench` (Debian package)
	@command -v wrk >/dev/null || apt-get install -y wrk >/dev/null || sudo apt-get install -y wrk >/dev/null

bench: install wrk  ## every hook against a bare FastAPI+orjson app under wrk, JWT cost, model scoring cost, population scale
	$(BIN)/python -m bench.hooks $(HOOKS_ARGS)
	$(BIN)/python -m bench.bench $(BENCH_ARGS)
	$(BIN)/python -m bench.scoring
	$(BIN)/python -m bench.surveillance
	$(MAKE) bench-scale

bench-scale: install  ## features and syndrome counting, in process vs Spark local, at 10k, 100k and 1M resources
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

soak: install  ## 10 minutes of mixed hooks, feedback and analytics at a fixed rate: memory, descriptors, p99 per minute
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

docker-check:  ## build the image and run it: healthy, and answers discovery in trial mode (needs a Docker daemon)
	docker build -t lhs-cds:check .
	docker rm -f lhs-check >/dev/null 2>&1 || true
	docker run -d --name lhs-check -p 127.0.0.1:18000:8000 -e LHS_AUTH=off lhs-cds:check
	for i in $$(seq 1 90); do curl -fs http://127.0.0.1:18000/readyz >/dev/null && break; sleep 2; done
	curl -fs http://127.0.0.1:18000/cds-services | grep -q '"services"'
	docker rm -f lhs-check >/dev/null
