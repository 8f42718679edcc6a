"""Thin routers: parse, call the AnswerService, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ragline.api.service import AnswerService


async def _service(request: Request) -> AnswerService:
    # async: FastAPI runs a plain def dependency in its threadpool, a thread hop per request for a lookup
    service: AnswerService = request.app.state.service
    return service


Service = Annotated[AnswerService, Depends(_service)]
