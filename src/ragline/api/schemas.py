"""Request and response bodies, as the OpenAPI schema shows them.

Requests are strict (a number is not a string, unknown fields in ``/query`` are refused); responses are
documented here but built from the records' ``to_json()``, so ``/query`` returns exactly what
``ragline ask --json`` prints.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints

from ragline.limits import MAX_K
from ragline.records import Mode

# A field name, optionally dotted (metadata.team): no empty parts ("a.", "metadata..x"), at most four.
FilterKey = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_\-]{0,63}){0,3}$")
]
FilterInt = Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)]  # what the index stores: 64-bit integers
FilterString = Annotated[StrictStr, StringConstraints(min_length=1, max_length=500)]
FilterValue = (
    FilterString
    | StrictBool
    | FilterInt
    | Annotated[list[FilterString], Field(min_length=1, max_length=32)]
    | Annotated[list[FilterInt], Field(min_length=1, max_length=32)]
)
Filters = Annotated[
    dict[FilterKey, FilterValue],
    Field(
        max_length=16,
        description="Narrow the search: `source` (URL or path prefix), `type` (html, markdown, rst, notebook), "
        "or any metadata field. Under an API key, the key's tenant always applies on top.",
        examples=[{"source": "https://docs.ray.io/en/master/serve/"}],
    ),
]
K = Annotated[
    StrictInt | None,
    Field(ge=1, le=MAX_K, description=f"How many chunks to retrieve: at most serve.max_k (≤ {MAX_K})"),
]


AnswerMode = Annotated[
    Mode | None,
    Field(
        description="extractive: the documentation's own sentences, cited, no model; generative: the model's "
        "answer, checked and flagged; auto: the model's answer when it passes the grounding check, the "
        "extractive one otherwise. Default: the server's (answer.mode)."
    ),
]
MaxTokens = Annotated[
    StrictInt | None,
    Field(ge=1, le=4096, description="The most tokens the answer may have (an extractive one is cut to them)"),
]


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: StrictStr = Field(max_length=20_000)


class QueryRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"query": "How do I stream a chain?", "k": 5}]}
    )

    query: StrictStr = Field(min_length=1, description="The question (server limit on its length applies)")
    k: K = None
    filters: Filters | None = None
    stream: StrictBool = Field(
        default=False,
        description="Server-Sent Events: draft (auto mode, while the model writes), token..., citations, done",
    )
    history: list[Turn] = Field(
        default=[],
        max_length=64,
        description="Earlier turns of the conversation, oldest first: a follow-up is searched for as a "
        "standalone question built from them",
    )
    mode: AnswerMode = None
    max_tokens: MaxTokens = None
    draft: StrictBool | None = Field(
        default=None,
        description="With stream in auto mode: send the extractive answer at once as a `draft` event while the model "
        "writes the answer that replaces it (default: the server's answer.draft setting)",
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"query": "autoscaling", "k": 5}]})

    query: StrictStr = Field(min_length=1)
    k: K = None
    filters: Filters | None = None


class HitOut(BaseModel):
    source: str = Field(description="URL#anchor of the chunk")
    title: str
    section: str
    chunk_id: str
    score: float
    text: str


class CitationOut(HitOut):
    n: int = Field(description="The [n] the answer cites")


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AnswerOut(BaseModel):
    question: str
    answer: str
    citations: list[CitationOut]
    document_ids: list[str]
    llm: str
    timings: dict[str, float] = Field(description="Seconds: retrieve, generate, first_token, total")
    usage: UsageOut
    mode: Literal["extractive", "generative"] = Field(description="How the answer shown was made")
    grounded: bool = Field(description="Whether the answer passed the grounding check")
    fallback: str | None = Field(description="Why a generated answer was replaced by the extractive one")
    check: dict[str, Any] | None = Field(description="The grounding check's findings")
    search_query: str | None = Field(description="What was searched for, when a follow-up was made standalone")
    finish_reason: Literal["stop", "length"]


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="ragline's kind of error, e.g. invalid_request, unauthorized, timeout")
    code: int = Field(description="The HTTP status")


class ErrorOut(BaseModel):
    error: ErrorDetail


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(description="OpenAI's error type: invalid_request_error, authentication_error, ...")
    param: str | None = Field(description="The request field at fault, e.g. messages[0].content")
    code: str | None = Field(description="e.g. invalid_value, missing_required_parameter, model_not_found")


class OpenAIErrorOut(BaseModel):
    """The /v1/ routes' errors, in OpenAI's shape."""

    error: OpenAIErrorDetail


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="'ok' or why the part is not ready")
    generation: dict[str, Any] | None = Field(
        default=None,
        description="The index generation served, the one published, and why one was refused; on Ray Serve, "
        "each replica that retrieves in replicas (served is then the oldest any replica serves)",
    )


# -- OpenAI-compatible ------------------------------------------------------------------------------


MAX_MESSAGE_CHARS = 20_000


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    text: StrictStr | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class ChatMessage(BaseModel):
    """One message; ``tool_calls``, ``name`` and ``tool_call_id`` are accepted and not used."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: (
        Annotated[StrictStr, StringConstraints(max_length=MAX_MESSAGE_CHARS)]
        | Annotated[list[ContentPart], Field(max_length=64)]
        | None
    ) = Field(
        default=None,
        description=f"Up to {MAX_MESSAGE_CHARS} characters (or parts). The last user message is the question: "
        "it may hold retrieved context, up to serve.max_message_chars and what the language model's context "
        "window reads (beyond it: a 400 naming both)",
    )

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr


# OpenAI takes larger limits than any model writes: the server's own answer limit (llm.max_tokens) applies.
ChatMaxTokens = Annotated[
    StrictInt | None, Field(ge=1, le=2**31 - 1, description="At most this many answer tokens, within llm.max_tokens")
]


class ChatRequest(BaseModel):
    """OpenAI's chat-completion request (docs/serving.md lists what is honoured, ignored or refused)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"model": "ragline", "messages": [{"role": "user", "content": "What is Ray?"}]}]
        },
    )

    model: StrictStr = Field(default="ragline", max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: ChatMaxTokens = None
    max_completion_tokens: ChatMaxTokens = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1, description="Accepted; the generators do not take it")
    n: StrictInt | None = Field(default=None, ge=1, le=128, description="Only 1")
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: StrictStr | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    function_call: StrictStr | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    logprobs: StrictBool | None = None
    mode: AnswerMode = None
    k: K = None
    filters: Filters | None = None

    def answer_tokens(self) -> int | None:
        """The limit the client asked for: the smaller of max_tokens and max_completion_tokens."""
        given = [t for t in (self.max_tokens, self.max_completion_tokens) if t is not None]
        return min(given) if given else None


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatChoiceMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageOut
    citations: list[CitationOut] = Field(description="ragline extension: the sources the answer cites as [n]")


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    root: str | None = Field(
        default=None,
        description="ragline extension, on the chat model only: the language model that writes its answers, "
        "as answers name it (e.g. llama-cpp:qwen2.5-coder-0.5b-instruct)",
    )


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


MAX_EMBEDDING_INPUTS = 2048  # OpenAI's: clients batch up to it (LangChain's OpenAIEmbeddings sends 1000)
MAX_EMBEDDING_CHARS = 8_000
EmbeddingText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_EMBEDDING_CHARS)]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": "sentence-transformers/all-MiniLM-L6-v2", "input": "autoscaling"}]},
    )

    model: StrictStr = Field(max_length=256, description="The embedding model, as GET /v1/models lists it")
    input: EmbeddingText | Annotated[list[EmbeddingText], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)] = Field(
        description=f"A text, or a list of up to {MAX_EMBEDDING_INPUTS} texts, each of 1 to {MAX_EMBEDDING_CHARS} "
        "characters (and the whole body within serve.max_embedding_body_bytes)"
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(default=None, ge=1, description="Only the model's own dimension")

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class EmbeddingOut(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="The vector, or with encoding_format base64 its float32 bytes")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingOut]
    model: str
    usage: EmbeddingUsage


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        401: "Missing or unknown API key",
        413: "Body too large",
        400: "A body that is not JSON",
        422: "Invalid request (empty or too long query, k out of range, wrong types)",
        429: "This API key already runs its share of answers; retry after Retry-After seconds",
        503: "The server is answering as many questions as it can, or the language model or the index is unavailable",
        504: "The language model or the whole request took too long",
    }.items()
}


def sse_schema(*events: str) -> dict[str, Any]:
    """The schema of one Server-Sent Event of a stream (its ``event`` name, if any, and its ``data`` line)."""
    name: dict[str, Any] = {"type": "string", "enum": list(events)} if events else {"type": "string"}
    return {
        "type": "object",
        "properties": {"event": name, "data": {"type": "string"}},
        "required": ["data"],
    }


# The /v1/ routes answer in OpenAI's shape and with OpenAI's statuses (400 where the others answer 422).
OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorOut, "description": text}
    for status, text in {
        400: "Invalid request: the body is not JSON, a field is wrong (param names it), or the question does not "
        "fit the language model's context window",
        401: "Missing or unknown API key",
        404: "Unknown model (model_not_found)",
        413: "Body too large",
        429: "This API key already runs its share of answers; retry after Retry-After seconds",
        503: "The server is answering as many questions as it can, or the language model or the index is unavailable",
        504: "The language model or the whole request took too long",
    }.items()
}
