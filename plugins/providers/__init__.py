"""The first-party model providers, one per module (registered by probebank_plugins.models)."""
