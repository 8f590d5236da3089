"""Datasets: cards, the registry, pinned sources, building examples, alignment to a tokenizer, splits, quality gates, scaffolding and the catalog."""
