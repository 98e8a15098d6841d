"""Report: tables in the papers' layouts, figures, provenance."""
