"""Renderers: a scan as a table, JSON or CSV; the report as HTML or Markdown. No AWS calls."""
