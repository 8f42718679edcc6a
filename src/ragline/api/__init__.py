"""The HTTP API: a FastAPI app built by ``create_app(backend, settings)`` in ``ragline.api.app``.

Nothing is imported here: ``ragline.config`` imports ``ragline.api.settings``, which must stay light.
"""
