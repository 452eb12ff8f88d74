"""The CDS Hooks 2.0 service call (https://cds-hooks.hl7.org/2.0/#calling-a-cds-service).

The hook's ``context`` is validated per hook in hooks/context.py.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AnyUrl, Field, model_validator

from hooks.wire import NonEmptyStr, WireRequest


class FhirAuthorization(WireRequest):
    access_token: NonEmptyStr
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: NonEmptyStr
    subject: NonEmptyStr
    patient: str | None = None


class HookRequest(WireRequest):
    """The body of ``POST /cds-services/{id}``. ``context`` is validated per hook in hooks/."""

    hook: NonEmptyStr
    hookInstance: uuid.UUID
    fhirServer: AnyUrl | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    # Values are FHIR resources or null; anything else (the spec example has a bare string)
    # is kept and treated as not usable, so the service fetches that key itself.
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> HookRequest:
        # Spec: fhirServer is CONDITIONAL, required whenever fhirAuthorization is present.
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self
