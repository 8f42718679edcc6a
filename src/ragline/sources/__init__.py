"""Where documents come from: local files and folders (``files``), the crawler."""

from ragline.sources.files import LocalFile, iter_files, load_document, source_url

__all__ = ["LocalFile", "iter_files", "load_document", "source_url"]
