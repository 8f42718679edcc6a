"""Experiment: adapt the bundled embedding model to one indexed corpus, from the corpus alone (no questions).

    .venv/bin/python bench/adapt.py INDEX_DATA_DIR OUT_MODEL_DIR [--epochs 1] [--batch 32] [--lr 2e-5] [--limit N]
    RAGLINE_EMBEDDING__MODEL=OUT_MODEL_DIR .venv/bin/python bench/eval.py ray --backend sentence-transformers

Training pairs come from the chunks already in the index: the heading a chunk sits under ("page - section") with
the chunk's text, and one sentence of a chunk with the rest of that chunk (inverse cloze). The model learns to
pick each pair's partner out of the batch (in-batch negatives, the MultipleNegativesRanking objective), with a
plain torch loop. On 2 CPUs one epoch over the Ray docs (9,242 pairs, 288 steps of 32) takes about half an hour.
Writes a sentence-transformers model folder; evaluate it by indexing again with it (the eval cache keys its
indexes by model). Not part of ragline: a measurement of whether corpus adaptation is worth building in.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (offline settings for the model hub)

from ragline.components import Components
from ragline.config import load_settings
from ragline.embed.models import bundled_minilm_dir

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def training_pairs(data_dir: Path, seed: int = 0) -> list[tuple[str, str]]:
    """(query-like text, chunk text) pairs from every chunk of the index at ``data_dir``."""
    rng = random.Random(seed)
    comp = Components(load_settings(data_dir=data_dir))
    pairs: list[tuple[str, str]] = []
    try:
        for _, payload in comp.store.points():
            text = str(payload.get("text") or "").strip()
            if len(text) < 80:
                continue
            title, section = payload.get("title") or "", payload.get("section") or ""
            heading = title if section in ("", title) else f"{title} - {section}"
            if heading:
                pairs.append((heading, text))
            sentences = [s for s in _SENTENCE_END.split(text) if 30 <= len(s) <= 300]
            if len(sentences) >= 3:
                sentence = rng.choice(sentences)
                # mostly without the sentence, so the model must match meaning rather than copy words
                pairs.append((sentence, text.replace(sentence, " ") if rng.random() < 0.9 else text))
    finally:
        comp.close()
    rng.shuffle(pairs)
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path, help="a ragline data dir whose index holds the corpus")
    ap.add_argument("out", type=Path, help="where to write the adapted model")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--scale", type=float, default=20.0, help="similarity scale of the softmax")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="train on the first N pairs only (a quick check)")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pairs = training_pairs(args.data_dir)[: args.limit]
    model = SentenceTransformer(str(bundled_minilm_dir()), device="cpu")
    model.max_seq_length = 256
    steps = args.epochs * (len(pairs) // args.batch)
    print(f"{len(pairs)} pairs, {steps} steps of {args.batch}", file=sys.stderr)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
    )

    def embed(texts: list[str]) -> torch.Tensor:
        out = model(model.preprocess(texts))["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    model.train()
    started, step = time.perf_counter(), 0
    for _ in range(args.epochs):
        for i in range(0, len(pairs) - args.batch + 1, args.batch):
            batch = pairs[i : i + args.batch]
            scores = embed([q for q, _ in batch]) @ embed([d for _, d in batch]).T * args.scale
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0:
                print(
                    f"step {step}/{steps} loss {loss.item():.3f} {time.perf_counter() - started:.0f} s", file=sys.stderr
                )
    model.eval()
    model.save(str(args.out))
    print(f"wrote {args.out} after {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
