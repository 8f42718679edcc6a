"""The MCP server (``ragline mcp``): ``search`` and ``ask`` as MCP tools, over stdio or streamable HTTP.

Needs the ``mcp`` extra: ``pip install 'ragline[mcp]'``. See docs/mcp.md.
"""
