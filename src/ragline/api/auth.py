"""API keys: ``Authorization: Bearer <key>``; each configured key names the tenant whose chunks it may see."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ragline.api.errors import UnauthorizedError
from ragline.api.settings import ServeSettings

# auto_error=False: a missing key is answered in our error shape, not FastAPI's.
_bearer = HTTPBearer(auto_error=False, description="An API key from serve.api_keys (when any are configured)")


def tenant_for_key(settings: ServeSettings, token: str | None) -> str | None:
    """The tenant of ``token``; None when no keys are configured (every chunk is visible)."""
    if not settings.api_keys:
        return None
    if not token:
        raise UnauthorizedError("an API key is required: send Authorization: Bearer <key>")
    given = token.encode("utf-8", "surrogatepass")
    tenant: str | None = None
    for key, owner in settings.api_keys.items():  # no early exit: the time taken says nothing about the keys
        if hmac.compare_digest(key.encode("utf-8"), given):
            tenant = owner
    if tenant is None:
        raise UnauthorizedError("the API key is not valid")
    return tenant


def _tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    settings: ServeSettings = request.app.state.serve_settings
    return tenant_for_key(settings, credentials.credentials if credentials else None)


Tenant = Annotated[str | None, Depends(_tenant)]
