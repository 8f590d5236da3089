"""Unsupervised bases (identity, rotation, PCA, ICA, dictionary, SAE) as scikit-learn transformers, their content-addressed store, the training corpus and the per-basis metrics of a run."""
