"""``lhs clients``: register the EHRs (CDS clients) allowed to call the service, rotate their keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cds_service.auth import SPEC_RECOMMENDED, ClientRegistration, ClientRegistry, jwks_from_file
from cds_service.config import Settings
from cds_service.tenancy import normalize_base_url
from cli.errors import fail_usage

clients_app = typer.Typer(
    help="Trusted CDS clients (issuers of the JWTs we accept).", no_args_is_help=True
)

RegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry", help="Registry file (default LHS_CLIENTS_FILE or <data_dir>/clients.json)."
    ),
]


def _registry(path: Path | None) -> ClientRegistry:
    return ClientRegistry.load(path or Settings().resolved_clients_file)


def _jwks(path: Path) -> dict:
    try:
        return jwks_from_file(path)
    except ValueError as error:
        fail_usage(str(error))


@clients_app.command()
def add(
    iss: Annotated[str, typer.Argument(help="The client's issuer (the JWT `iss`).")],
    jwks_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="JWK Set with its public keys.")
    ] = None,
    jwks_url: Annotated[
        str | None, typer.Option(help="URL of its JWK Set (fetched and cached).")
    ] = None,
    jku_allow: Annotated[
        list[str] | None, typer.Option(help="A `jku` URL this client may point to (repeatable).")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Required `tenant` claim.")] = None,
    fhir_server: Annotated[
        list[str] | None,
        typer.Option(
            help="A FHIR base URL this client may name in `fhirServer` (repeatable; exact match). "
            "Without any, the client must send all data as prefetch."
        ),
    ] = None,
    informatician: Annotated[
        bool,
        typer.Option(
            help="A credential for people who evaluate the service: reads every client's "
            "explanations and analytics."
        ),
    ] = False,
    alg: Annotated[
        list[str] | None,
        typer.Option(help="Allowed algorithm (repeatable; default ES384 and RS384)."),
    ] = None,
    registry: RegistryOption = None,
) -> None:
    """Register a client (or replace its registration)."""
    if jwks_file is None and jwks_url is None and not jku_allow:
        fail_usage(
            "give --jwks-file, --jwks-url or --jku-allow: the client's keys must come from somewhere"
        )
    clients = _registry(registry)
    try:
        registration = ClientRegistration(
            iss=iss,
            jwks=_jwks(jwks_file) if jwks_file else None,
            jwks_url=jwks_url,
            jku_allowlist=jku_allow or [],
            tenant=tenant,
            algorithms=alg or list(SPEC_RECOMMENDED),
            fhir_servers=[normalize_base_url(url) for url in fhir_server or ()],
            informatician=informatician,
        )
    except ValueError as error:
        fail_usage(str(error))
    clients.clients[iss] = registration
    clients.save()
    typer.echo(f"registered {iss} in {clients.path}")


@clients_app.command("list")
def list_clients(registry: RegistryOption = None) -> None:
    """The registered clients and where their keys come from."""
    clients = _registry(registry).clients.values()
    if not clients:
        typer.echo("No clients registered (add one with `lhs clients add`).")
    for client in clients:
        keys = [f"{len(client.jwks['keys'])} inline key(s)"] if client.jwks else []
        keys += [f"JWKS {client.jwks_url}"] if client.jwks_url else []
        keys += [f"jku {url}" for url in client.jku_allowlist]
        servers = ",".join(client.fhir_servers) or "-"
        role = "  informatician" if client.informatician else ""
        typer.echo(
            f"{client.iss}  algorithms={','.join(client.algorithms)}  tenant={client.tenant or '-'}"
            f"  fhir_servers={servers}{role}  {'; '.join(keys)}"
        )


@clients_app.command()
def remove(iss: str, registry: RegistryOption = None) -> None:
    """Stop trusting a client."""
    clients = _registry(registry)
    if clients.clients.pop(iss, None) is None:
        fail_usage(f"no client {iss!r}")
    clients.save()
    typer.echo(f"removed {iss}")


@clients_app.command()
def rotate(
    iss: str,
    jwks_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The client's new JWK Set.")
    ],
    registry: RegistryOption = None,
) -> None:
    """Replace a client's inline keys (include the old key in the new set to overlap)."""
    clients = _registry(registry)
    client = clients.get(iss)
    if client is None:
        fail_usage(f"no client {iss!r}")
    clients.clients[iss] = client.model_copy(update={"jwks": _jwks(jwks_file)})
    clients.save()
    typer.echo(f"rotated the keys of {iss}")
