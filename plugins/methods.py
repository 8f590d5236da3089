"""Built-in k-sparse selection methods, registered by name through the register_methods hook.

The implementations live in probebank.probing (selection and exact); a third-party plugin
registers its own Selector subclass the same way (a later-loaded plugin's name wins).
"""
from __future__ import annotations

from probebank.contracts import RegisterMethod
from probebank.hookspecs import hookimpl


@hookimpl
def register_methods(register: RegisterMethod) -> None:
    from probebank.probing.methods import BUILTIN_METHODS  # scikit-learn loads on first use of a method

    for name, selector_cls in BUILTIN_METHODS.items():
        register(name, selector_cls)
