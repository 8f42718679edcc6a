"""Corpus adaptation: fine-tune a sentence-transformers embedder on an indexed corpus, from its chunks alone.

No questions are needed. Each chunk gives up to two training pairs: the heading it sits under ("page - section")
with its text, and one of its sentences with the rest of it (the inverse cloze task). The model learns to pick
each pair's partner out of the batch (in-batch negatives: the multiple-negatives ranking objective). A small
share of the pairs is held out, and the report says how often the model finds a held-out pair's partner among
its batch before and after training: a quick sign that training did something, not a retrieval evaluation.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragline.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

Pair = tuple[str, str]  # (query-like text, passage)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MIN_CHUNK_CHARS = 80
_SENTENCE_CHARS = (30, 300)


@dataclass(frozen=True, slots=True)
class AdaptOptions:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    scale: float = 20.0  # similarity scale of the softmax over the batch
    max_pairs: int | None = None  # train on this many pairs only (after shuffling)
    held_out: float = 0.05  # share of pairs kept out of training to score the model before and after
    max_seq_length: int = 256
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("adapt needs at least one epoch and batches of at least 2 pairs")
        if not 0 <= self.held_out < 0.5:
            raise ConfigError("the held-out share must be in [0, 0.5)")


@dataclass(slots=True)
class AdaptReport:
    base_model: str
    out: str
    pairs: int
    held_out_pairs: int
    steps: int
    seconds: float
    first_loss: float | None
    last_loss: float | None
    held_out_before: PairScore | None  # the base model on the held-out pairs
    held_out_after: PairScore | None  # the adapted model on the same pairs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def heading(payload: Mapping[str, Any]) -> str:
    """The chunk's place as a reader sees it: "page - section", or the page title alone."""
    title, section = str(payload.get("title") or ""), str(payload.get("section") or "")
    return title if section in ("", title) else f"{title} - {section}"


def training_pairs(payloads: Iterable[Mapping[str, Any]], seed: int = 0) -> list[Pair]:
    """Pairs from stored chunk payloads (``text``, ``title``, ``section``), shuffled with ``seed``."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for payload in payloads:
        text = str(payload.get("text") or "").strip()
        if len(text) < _MIN_CHUNK_CHARS:
            continue
        head = heading(payload)
        if head:
            pairs.append((head, text))
        low, high = _SENTENCE_CHARS
        sentences = [s for s in _SENTENCE_END.split(text) if low <= len(s) <= high]
        if len(sentences) >= 3:
            sentence = rng.choice(sentences)
            # Mostly without the sentence, so the model learns to match meaning rather than copy words.
            pairs.append((sentence, text.replace(sentence, " ") if rng.random() < 0.9 else text))
    rng.shuffle(pairs)
    return pairs


def _torch() -> Any:
    try:
        import torch
        from sentence_transformers import SentenceTransformer  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("sentence-transformers", "embed") from e
    return torch


def _in_batch_loss(model: Any, batch: Sequence[Pair], scale: float, query_prefix: str, doc_prefix: str) -> Any:
    torch = _torch()

    def embed(texts: list[str]) -> Any:
        out = model(model.preprocess(texts))["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    queries = embed([query_prefix + q for q, _ in batch])
    passages = embed([doc_prefix + d for _, d in batch])
    scores = queries @ passages.T * scale
    return scores, torch.nn.functional.cross_entropy(scores, torch.arange(len(batch), device=scores.device))


@dataclass(frozen=True, slots=True)
class PairScore:
    accuracy: float  # share of pairs whose partner scores highest among the passages of its batch
    loss: float  # mean in-batch cross-entropy at the training scale


def score_pairs(
    model: Any,
    pairs: Sequence[Pair],
    batch_size: int,
    scale: float = 20.0,
    query_prefix: str = "",
    doc_prefix: str = "",
) -> PairScore | None:
    """How well ``model`` tells each pair's partner from the rest of its batch (batches as in training)."""
    torch = _torch()
    right = total = 0
    loss_sum = 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pairs) - 1, batch_size):
            batch = pairs[i : i + batch_size]
            if len(batch) < 2:
                break
            scores, loss = _in_batch_loss(model, batch, scale, query_prefix, doc_prefix)
            right += int((scores.argmax(dim=1) == torch.arange(len(batch))).sum())
            loss_sum += float(loss) * len(batch)
            total += len(batch)
    model.train(was_training)
    return PairScore(right / total, loss_sum / total) if total else None


def adapt(
    base_model: str,
    pairs: Sequence[Pair],
    out: Path,
    options: AdaptOptions = AdaptOptions(),
    *,
    query_prefix: str = "",
    doc_prefix: str = "",
    progress: Callable[[int, int, float], None] | None = None,
) -> AdaptReport:
    """Fine-tune ``base_model`` (a sentence-transformers name or folder) on ``pairs``; save it to ``out``.

    ``progress(step, steps, loss)`` is called after every optimiser step.
    """
    torch = _torch()
    from sentence_transformers import SentenceTransformer

    pairs = list(pairs)[: options.max_pairs] if options.max_pairs else list(pairs)
    n_held = int(len(pairs) * options.held_out) if len(pairs) >= 40 else 0
    held, train = pairs[:n_held], pairs[n_held:]
    steps = options.epochs * (len(train) // options.batch_size)
    if steps == 0:
        raise ConfigError(
            f"{len(train)} training pairs do not fill one batch of {options.batch_size}: index more text first"
        )
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the command draws its own progress
    except ImportError:  # pragma: no cover - older transformers
        pass
    torch.manual_seed(options.seed)
    try:
        model = SentenceTransformer(base_model, device=options.device)
    except Exception as e:  # the library raises many kinds; all mean "cannot load this model"
        raise ConfigError(f"cannot load embedding model {base_model!r}: {e}") from e
    model.max_seq_length = min(model.max_seq_length or options.max_seq_length, options.max_seq_length)
    before = score_pairs(model, held, options.batch_size, options.scale, query_prefix, doc_prefix)

    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
    )
    log.info("adapting %s: %d pairs (%d held out), %d steps", base_model, len(pairs), n_held, steps)
    model.train()
    started, step = time.perf_counter(), 0
    first_loss = last_loss = None
    for _ in range(options.epochs):
        for i in range(0, len(train) - options.batch_size + 1, options.batch_size):
            _, loss = _in_batch_loss(model, train[i : i + options.batch_size], options.scale, query_prefix, doc_prefix)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            last_loss = float(loss.item())
            first_loss = last_loss if first_loss is None else first_loss
            if progress is not None:
                progress(step, steps, last_loss)
    model.eval()
    after = score_pairs(model, held, options.batch_size, options.scale, query_prefix, doc_prefix)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return AdaptReport(
        base_model=base_model,
        out=str(out),
        pairs=len(pairs),
        held_out_pairs=n_held,
        steps=steps,
        seconds=time.perf_counter() - started,
        first_loss=first_loss,
        last_loss=last_loss,
        held_out_before=before,
        held_out_after=after,
    )
