"""Extension points. Each hook receives a `register` callable; a plugin implements only what it needs.

    from probebank.hookspecs import hookimpl

    @hookimpl
    def register_datasets(register):
        register("my-builder", build_fn)            # cards name their builder
"""
import pluggy

hookspec = pluggy.HookspecMarker("probebank")
hookimpl = pluggy.HookimplMarker("probebank")


@hookspec
def register_datasets(register):
    """Register dataset builders: register(name, build_fn, card=None); card may be a DatasetCard or a card.yaml path."""


@hookspec
def register_sources(register):
    """Register source kinds: register(kind, fetch_fn) where fetch_fn(pin, ctx) -> Path of the unpacked artifact."""


@hookspec
def register_models(register):
    """Register model providers: register(name, provider) where provider.load(spec, *, dtype='float32') -> LoadedModel."""


@hookspec
def register_methods(register):
    """Register k-sparse selection methods: register(name, factory) where factory(**params) -> Selector."""


@hookspec
def register_bases(register):
    """Register unsupervised bases: register(name, factory) where factory(**params) -> Basis (fit / encode)."""
