"""fenceproof: prove every code block of a Markdown skill against a real PostgreSQL."""
