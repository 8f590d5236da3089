"""k-sparse probes: selection methods, the Newton solver, probes as scikit-learn estimators, k sweeps, exact probes, controls, statistics and evaluation of a stored dataset."""
