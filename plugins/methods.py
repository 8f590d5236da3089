"""Built-in k-sparse selection methods, registered by name through the register_methods hook.

The implementations live in probebank.select (and probebank.milp for the exact `milp`
method); a third-party plugin registers its own Selector subclass the same way (a later
registration of a name overrides this one).
"""
from __future__ import annotations

from probebank.hookspecs import hookimpl
from probebank.milp import MilpSelector
from probebank.select import BUILTIN_SELECTORS


@hookimpl
def register_methods(register):
    # mean_diff, f_stat, mutual_info, l1, adaptive, random
    for name, selector_cls in BUILTIN_SELECTORS.items():
        register(name, selector_cls)
    register("milp", MilpSelector)  # exact k-sparse probes with a certificate
