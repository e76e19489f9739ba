"""Pure aggregation: run records in, tables (Markdown, LaTeX, CSV) out."""
