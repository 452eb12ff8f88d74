"""Who is calling, what they own and what they may reach.

Every row a call produces (invocation, card, prediction, feedback, outcome) is owned by the
CDS client that made it; reads are scoped to the caller's own rows unless the caller is an
informatician, whose registration lets them read across clients. A client may send us to
fetch FHIR data only from the FHIR servers registered for it: the EHR's bearer token goes
to that server, so an arbitrary URL would leak the token and let callers probe our network.
"""

from __future__ import annotations

from dataclasses import dataclass


def owner_of(iss: str, tenant: str | None) -> str:
    """The owner name stored with a client's rows: its issuer, and tenant when it has one."""
    return f"{iss}#{tenant}" if tenant else iss


def normalize_base_url(url: str) -> str:
    """A FHIR base URL as compared against allow lists: no trailing slash."""
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class Caller:
    owner: str
    """"" for every caller when authentication is off (a single local deployment)"""
    reads_all: bool
    """may read every client's rows (informaticians; everyone when authentication is off)"""
    fhir_servers: frozenset[str] | None
    """FHIR base URLs this caller may name in ``fhirServer``; None: any"""

    @property
    def scope(self) -> str | None:
        """The owner to filter reads by, or None to read across owners."""
        return None if self.reads_all else self.owner

    def may_use_fhir_server(self, url: str) -> bool:
        return self.fhir_servers is None or normalize_base_url(url) in self.fhir_servers


def local_caller(fhir_servers: list[str]) -> Caller:
    """The caller when authentication is off; an allow list from settings still applies."""
    allowed = frozenset(normalize_base_url(u) for u in fhir_servers) if fhir_servers else None
    return Caller(owner="", reads_all=True, fhir_servers=allowed)
