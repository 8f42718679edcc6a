"""What every Embedder backend must do, run against each real backend with the bundled MiniLM.

A backend's test module subclasses ``EmbedderContract`` and provides an ``embedder`` fixture.
"""

from __future__ import annotations

import numpy as np

from ragline.embed import Embedder

DOCS = [
    "Ray Serve scales a deployment by adding replicas; autoscaling follows the queue length.",
    "Qdrant stores dense vectors and sparse BM25 vectors side by side in one collection.",
    "The crawler honours robots.txt and re-fetches a page only when its ETag changed.",
]
QUERIES = ["how do replicas autoscale in serve", "where are the sparse vectors kept", "does the crawler refetch"]


class EmbedderContract:
    def test_is_an_embedder_of_the_bundled_model(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert embedder.dimension == 384
        assert embedder.max_tokens >= 128

    def test_documents_come_back_in_order_normalised_and_of_the_dimension(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents(DOCS)
        assert vectors.shape == (len(DOCS), embedder.dimension)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
        one_by_one = np.stack([embedder.embed_documents([d])[0] for d in DOCS])
        # Batching keeps each text's vector: exactly in float, nearly with ONNX's dynamic int8 quantization,
        # whose activation scale is taken over the whole batch (cosine 0.990-0.994 to the text alone here).
        assert (vectors * one_by_one).sum(axis=1).min() >= 0.98

    def test_each_query_finds_its_document(self, embedder: Embedder) -> None:
        docs = embedder.embed_documents(DOCS)
        queries = np.stack([embedder.embed_query(q) for q in QUERIES])
        assert (queries @ docs.T).argmax(axis=1).tolist() == list(range(len(DOCS)))

    def test_a_query_is_deterministic(self, embedder: Embedder) -> None:
        assert np.array_equal(embedder.embed_query(QUERIES[0]), embedder.embed_query(QUERIES[0]))

    def test_tokens_are_counted_by_the_model(self, embedder: Embedder) -> None:
        assert embedder.count_tokens("") <= 2  # at most the special tokens
        assert embedder.count_tokens("hello " * 50) >= 50

    def test_nothing_in_nothing_out(self, embedder: Embedder) -> None:
        assert embedder.embed_documents([]).shape[0] == 0
