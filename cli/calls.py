"""Trying the service: ``lhs example``, ``lhs call``, ``lhs sweep`` and ``lhs explain``."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from cds_service.config import Settings
from cli.errors import fail

_INDICATOR_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def format_cards(response: dict[str, Any]) -> str:
    """A readable rendering of a CDS Hooks response for the terminal."""
    cards = response.get("cards", [])
    if not cards:
        return "No cards."
    lines: list[str] = []
    for card in cards:
        indicator = card["indicator"].upper()
        lines.append(
            typer.style(
                f"[{indicator}] {card['summary']}",
                fg=_INDICATOR_STYLE.get(card["indicator"]),
                bold=True,
            )
        )
        source = card["source"]
        lines.append(
            f"  source: {source['label']}" + (f" <{source['url']}>" if source.get("url") else "")
        )
        for suggestion in card.get("suggestions", []):
            actions = "; ".join(
                f"{a['type']}: {a['description']}" for a in suggestion.get("actions", [])
            )
            lines.append(
                f"  suggestion: {suggestion['label']}" + (f" ({actions})" if actions else "")
            )
        lines.append(f"  card uuid: {card.get('uuid', '-')}")
        lines.append("")
    return "\n".join(lines).rstrip()


def example(
    service_id: Annotated[str, typer.Argument(help="Service id, e.g. lhs-order-sign.")],
) -> None:
    """Print an example hook request (with prefetch, dated relative to today) for a service."""
    from datetime import date

    from point_of_care.examples import EXAMPLES

    if service_id not in EXAMPLES:
        fail(f"no example for {service_id}; known: {', '.join(EXAMPLES)}")
    typer.echo(json.dumps(EXAMPLES[service_id](date.today()), indent=2))


def call(
    service_id: Annotated[str, typer.Argument(help="Service id, e.g. lhs-patient-view.")],
    request_file: Annotated[
        str, typer.Argument(help="JSON hook request file, or - for standard input.")
    ],
    url: Annotated[
        str | None,
        typer.Option(
            envvar="LHS_SERVICE_URL",
            help="Base URL of the CDS service (default LHS_PUBLIC_BASE_URL, else "
            "http://127.0.0.1:LHS_PORT).",
        ),
    ] = None,
    raw: Annotated[bool, typer.Option("--json", "--raw", help="Print the JSON response.")] = False,
) -> None:
    """Send a hook request from a JSON file and print the cards.

    A file holding only ``context`` (like the spec's hook examples) is completed with the
    service's hook and a fresh hookInstance.
    """
    text = (
        sys.stdin.read() if request_file == "-" else Path(request_file).read_text(encoding="utf-8")
    )
    body = json.loads(text)
    if not isinstance(body, dict):
        fail(f"{request_file} holds no JSON object (a hook request or its context)")
    with httpx.Client(base_url=url or service_url(Settings()), timeout=30) as client:
        if "hook" not in body:
            services = client.get("/cds-services").raise_for_status().json()["services"]
            hooks = {s["id"]: s["hook"] for s in services}
            if service_id not in hooks:
                fail(f"unknown service {service_id}; known: {', '.join(hooks)}")
            body["hook"] = hooks[service_id]
        body.setdefault("hookInstance", str(uuid.uuid4()))
        response = client.post(f"/cds-services/{service_id}", json=body)
    if response.status_code != 200:
        fail(refusal(response))
    typer.echo(json.dumps(response.json(), indent=2) if raw else format_cards(response.json()))


def service_url(settings: Settings) -> str:
    """Where this machine's service answers, as its settings say."""
    return settings.public_base_url or f"http://127.0.0.1:{settings.port}"


def refusal(response: httpx.Response) -> str:
    """A refused call in one line: status, message and the fields named."""
    try:
        body = response.json()
    except ValueError:
        return f"the service answered {response.status_code}: {response.text[:200]}"
    fields = "; ".join(f"{d['field']}: {d['message']}" for d in body.get("details", []))
    return f"the service answered {response.status_code}: {body.get('message', body)}" + (
        f" ({fields})" if fields else ""
    )


def sweep(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Folder of FHIR patient Bundles (.json or .json.gz); default LHS_TRAINING_DATA."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Evaluate as of this date (default LHS_EVALUATION_TIME or now)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N patients.")] = None,
) -> None:
    """Run every service over every patient in FOLDER and print cards per rule (alert burden)."""
    import asyncio
    from datetime import UTC, datetime
    from itertools import islice

    from fhir_client.bundles import load_bundle, patient_bundles
    from hooks.requests import HookRequest
    from knowledge.library import load_library
    from point_of_care.catalogue import build_services
    from point_of_care.invocation import InvalidRequest, PrefetchUnavailable, run_service
    from point_of_care.sweep import SweepSummary, requests_for_patient

    settings = Settings()
    try:
        when = (
            datetime.fromisoformat(as_of).replace(tzinfo=UTC) if as_of else settings.evaluation_time
        )
    except ValueError:
        fail(f"--as-of takes a date such as 2024-06-30, not {as_of!r}")
    folder = folder or settings.training_data
    paths = list(islice(patient_bundles(folder), limit)) if folder.is_dir() else []
    if not paths:
        fail(f"no FHIR patient Bundles (*.json, *.json.gz) in {folder}")
    services = build_services(load_library())
    summary = SweepSummary()

    async def run_all() -> None:
        for path in paths:
            cards: dict[str, list[tuple[str, str]]] = {}
            for service, request in requests_for_patient(load_bundle(path), services):
                try:
                    result = await run_service(
                        service, HookRequest.model_validate(request), as_of=when
                    )
                except (InvalidRequest, PrefetchUnavailable) as error:
                    summary.errors[type(error).__name__] += 1
                    continue
                cards[service.id] = [(a.rule_id, a.card.indicator) for a in result.advice]
            summary.add_patient(cards)

    asyncio.run(run_all())
    typer.echo(summary.table())


def explain(
    card_uuid: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Why a card was shown: rule version, citations, the patient's values, feedback."""
    from point_of_care.explain import explain_card
    from storage.db import create_db_engine
    from storage.repository import Store

    explained = explain_card(Store(create_db_engine(Settings().resolved_database_url)), card_uuid)
    if explained is None:
        fail(f"no card with uuid {card_uuid}")
    typer.echo(json.dumps(explained, indent=2) if as_json else format_explanation(explained))


def format_explanation(explained: dict[str, Any]) -> str:
    rule = explained["rule"]
    lines = [
        f"[{explained['indicator'].upper()}] {explained['summary']}",
        f"  issued {explained['issuedAt']} by {explained['service']}",
        f"  rule {rule['id']} {rule['version']}" + (f": {rule['title']}" if rule["title"] else ""),
    ]
    lines += [
        f"  cites {c.get('title', '')} {c.get('url', '')}".rstrip() for c in explained["citations"]
    ]
    lines += [f"  input {name} = {value}" for name, value in sorted(explained["inputs"].items())]
    if explained["prediction"]:
        lines.append(f"  prediction {json.dumps(explained['prediction'])}")
    lines += [
        f"  feedback {f['outcome']} at {f['outcomeTimestamp']}"
        + (f" ({f['overrideReason']})" if f["overrideReason"] else "")
        for f in explained["feedback"]
    ] or ["  no feedback yet"]
    return "\n".join(lines)
