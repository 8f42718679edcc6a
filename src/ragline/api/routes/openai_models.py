"""GET /v1/models, GET /v1/models/{id} and POST /v1/embeddings: the two models the OpenAI-compatible API serves.

``ragline`` answers chat completions from the index; the index's embedding model (named as the index records
it, e.g. ``sentence-transformers/all-MiniLM-L6-v2``) embeds texts, so other tools can share it.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ragline.api.auth import Tenant
from ragline.api.backend import Served
from ragline.api.errors import InvalidParameterError, ModelNotFoundError
from ragline.api.routes import Service
from ragline.api.schemas import OPENAI_ERROR_RESPONSES, EmbeddingList, EmbeddingRequest, ModelList, ModelOut

router = APIRouter(prefix="/v1", tags=["openai"])

CHAT_MODEL = "ragline"
_CREATED = int(time.time())


def _model(model_id: str, served: Served) -> dict[str, Any]:
    listed = {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "ragline"}
    if model_id == CHAT_MODEL and served.llm:
        listed["root"] = served.llm  # the language model behind the chat model
    return listed


def chat_model(name: str) -> str:
    """``name`` when it is the chat model; else OpenAI's 404 ``model_not_found``."""
    if name != CHAT_MODEL:
        raise ModelNotFoundError(f"the model {name!r} does not exist or cannot answer chat: use {CHAT_MODEL!r}")
    return name


def embedding_model(name: str, served: Served) -> str:
    """The embedding model's listed id for any of its names; else OpenAI's 404 ``model_not_found``."""
    if name not in served.embedding_names():
        raise ModelNotFoundError(f"the model {name!r} does not exist or cannot embed: use {served.embedding_model!r}")
    return served.embedding_model


@router.get(
    "/models",
    response_model=ModelList,
    response_model_exclude_none=True,
    responses={401: OPENAI_ERROR_RESPONSES[401]},
    summary="The chat model (with the language model behind it) and the index's embedding model",
)
async def models(service: Service, tenant: Tenant) -> dict[str, Any]:
    served = service.backend.served
    ids = (CHAT_MODEL, served.embedding_model)
    return {"object": "list", "data": [_model(i, served) for i in ids]}


@router.get(
    "/models/{model_id:path}",
    response_model=ModelOut,
    response_model_exclude_none=True,
    responses={status: OPENAI_ERROR_RESPONSES[status] for status in (401, 404)},
    summary="One model, by its id",
)
async def model(model_id: str, service: Service, tenant: Tenant) -> dict[str, Any]:
    served = service.backend.served
    if model_id not in (CHAT_MODEL, served.embedding_model):
        raise ModelNotFoundError(f"the model {model_id!r} does not exist")
    return _model(model_id, served)


@router.post(
    "/embeddings",
    response_model=EmbeddingList,
    responses=OPENAI_ERROR_RESPONSES,
    summary="Embed texts with the index's embedding model",
)
async def embeddings(body: EmbeddingRequest, service: Service, tenant: Tenant) -> Response:
    name = embedding_model(body.model, service.backend.served)
    texts = body.texts()
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidParameterError("an input is blank", param="input" if len(texts) == 1 else f"input[{i}]")
    vectors, tokens = await service.embed(texts)
    if body.dimensions is not None and body.dimensions != vectors.shape[1]:
        raise InvalidParameterError(
            f"the model's vectors have {vectors.shape[1]} dimensions; it cannot give {body.dimensions}",
            param="dimensions",
        )
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(vector, body.encoding_format)}
        for i, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JSONResponse({"object": "list", "data": data, "model": name, "usage": usage})


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # OpenAI's: the little-endian float32 bytes
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
