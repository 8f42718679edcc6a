"""Adapters that let other frameworks use a ragline index; each needs its own extra (e.g. ``ragline[langchain]``)."""
