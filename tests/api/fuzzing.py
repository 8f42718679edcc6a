"""schemathesis over the served OpenAPI schema, bounded, as both engines' tests run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANSWER_ROUTES = ("/query", "/v1/chat/completions")


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    calls: int = 0


def fuzz(base_url: str, headers: dict[str, str], *, answers: int, others: int = 25) -> Findings:
    """Positive and negative cases for every operation (``answers`` positive cases for the routes that run the
    model, ``others`` for the rest): a 5xx, or a status, content type or body the schema does not declare, is a
    failure; on /v1/ so is an error not in OpenAI's shape or a 422 (OpenAI answers 400)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    found = Findings()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            costly = operation.path in ANSWER_ROUTES and mode is GenerationMode.POSITIVE

            @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
            @settings(
                max_examples=answers if costly else others,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                found.calls += 1
                found.seen.add(case.operation.path)
                response = case.call(base_url=base_url, headers=headers, timeout=120)
                where = f"{case.method} {case.path} {case.body!r:.200} -> {response.status_code} {response.text:.300}"
                if response.status_code < 500 and _over_the_request_line_bound(case):
                    return  # refused by the HTTP layer before the app (HAProxy, h11): not the schema's to describe
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except Exception as e:  # schemathesis raises its findings (one, or a group)
                    found.failures.append(f"{type(e).__name__}: {str(e)[:300]} | {where}")
                if case.path.startswith("/v1/") and 400 <= response.status_code != 413:
                    error = response.json().get("error", {})
                    if response.status_code == 422 or set(error) != {"message", "type", "param", "code"}:
                        found.failures.append(f"not OpenAI's error: {where}")

            try:
                run()
            except Unsatisfiable:  # e.g. no invalid request exists for GET /healthz
                continue
    return found


# HTTP servers and proxies bound a request's line and headers (HAProxy's buffer and h11's are 16 KB) and refuse a
# longer one themselves, in their own format. A query parameter of 2,000 four-byte characters is 24 KB encoded.
REQUEST_LINE_BOUND = 8_000


def _over_the_request_line_bound(case: Any) -> bool:
    from urllib.parse import urlencode

    return len(case.formatted_path) + len(urlencode(case.query or {}, doseq=True)) > REQUEST_LINE_BOUND
