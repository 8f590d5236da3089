"""Causal checks of found units: ablate them (or steer by them) during the forward pass and compare the
effect with that of random units of matched activation variance from the same layer.

One module per job: head (the LM head extraction never runs), ablate (the hooks that edit a site's
units, and the forward passes that run them), effects (next-token loss and the probability of the
feature's own tokens), null (matched-variance draws and the permutation p-value), steer (adding the
class-mean difference and reading a downstream probe), record (the `causal` record kind and its
file), check (one check end to end, cached by content). See docs/causal.md.
"""
