"""CDS Hooks 2.0 discovery response (https://cds-hooks.hl7.org/2.0/#discovery)."""

from __future__ import annotations

from hooks.wire import WireResponse


class ServiceDescription(WireResponse):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class DiscoveryResponse(WireResponse):
    services: list[ServiceDescription]
