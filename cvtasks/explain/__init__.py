"""explain: what a CNN looks at (attributions) and what it has learned (visualisations)."""
