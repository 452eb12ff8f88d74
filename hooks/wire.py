"""Base models of the CDS Hooks wire types.

What we emit is strict and serialised without unset optional members; what clients send
tolerates unknown members (the spec's ``extension`` mechanism and forward compatibility).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class WireResponse(BaseModel):
    """Base for what we emit: unknown members are refused, so nothing outside the spec leaves."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WireRequest(BaseModel):
    """Base for what clients send: unknown members are tolerated and kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
