"""Operations on a live index: delete sources, snapshot and restore, keep it current by watching folders.

Each module is plain functions over a VectorStore (and, where searches are replayed, an embedding
function), so the CLI, the admin API route and the tests share them.
"""
