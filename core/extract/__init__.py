"""Activations: model layouts and providers, tokenizers, forward passes with hooks, aggregation and the content-addressed activation store."""
