"""API keys: ``Authorization: Bearer <key>``; each configured key names the tenant whose chunks it may see."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ragline.api.errors import ForbiddenError, UnauthorizedError
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
        if hmac.compare_digest(key.get_secret_value().encode("utf-8"), given):
            tenant = owner
    if tenant is None:
        raise UnauthorizedError("the API key is not valid")
    return tenant


async def _tenant(  # async, like every cheap dependency: no threadpool hop
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    settings: ServeSettings = request.app.state.serve_settings
    return tenant_for_key(settings, credentials.credentials if credentials else None)


Tenant = Annotated[str | None, Depends(_tenant)]


def check_admin(settings: ServeSettings, token: str | None) -> None:
    """Let an admin key through; 401 without a valid key, 403 for a tenant key or when no admin key is set."""
    if not token:
        raise UnauthorizedError("an admin API key is required: send Authorization: Bearer <key>")
    given = token.encode("utf-8", "surrogatepass")
    admin = False
    for key in settings.admin_api_keys:  # no early exit, as above
        admin |= hmac.compare_digest(key.get_secret_value().encode("utf-8"), given)
    if admin:
        return
    if not settings.admin_api_keys:
        raise ForbiddenError("the admin routes are disabled: configure serve.admin_api_keys")
    if any(hmac.compare_digest(key.get_secret_value().encode("utf-8"), given) for key in settings.api_keys):
        raise ForbiddenError("this API key has no admin rights")
    raise UnauthorizedError("the API key is not valid")


async def _admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    settings: ServeSettings = request.app.state.serve_settings
    check_admin(settings, credentials.credentials if credentials else None)


Admin = Depends(_admin)
