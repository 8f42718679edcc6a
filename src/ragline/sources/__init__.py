"""Where documents come from: local files and folders (``files``), the crawler."""
