"""Cost of the trainable bases on this machine, side by side in one run.

Measures, on activations of a given width (SmolLM2-135M: mlp 1536, resid 576):
  - TopK SAE training: seconds for a measured run of N tokens x E epochs, extrapolated to
    seconds per million training tokens (token-steps), linear in tokens (fixed batch size);
  - TopK SAE encoding: seconds per million tokens;
  - PCA fit (covariance eigendecomposition) on the same N tokens, and PCA encoding per million tokens.
The activations are Gaussian with a decaying spectrum (cost does not depend on the values).

    python bench/bases.py --width 1536 --tokens 20000
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=1536)
    ap.add_argument("--tokens", type=int, default=20_000, help="training tokens of the measured run")
    ap.add_argument("--expansion", type=int, default=4)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()

    import torch

    from probebank.bases.linear import PCABasis
    from probebank.bases.sae import TopKTrainConfig, train_topk_sae

    rng = np.random.default_rng(0)
    spectrum = (1.0 / np.sqrt(1 + np.arange(args.width))).astype(np.float32)
    X = rng.standard_normal((args.tokens, args.width)).astype(np.float32) * spectrum
    d_sae = args.expansion * args.width
    print(f"width {args.width}, SAE {d_sae} latents (k={args.k}), {args.tokens} tokens x {args.epochs} epoch(s), "
          f"torch threads {torch.get_num_threads()}")

    t = time.perf_counter()
    weights, report = train_topk_sae(X, TopKTrainConfig(d_sae=d_sae, k=args.k, epochs=args.epochs), progress=False)
    sae_train = time.perf_counter() - t
    t = time.perf_counter()
    weights.encode(X)
    sae_encode = time.perf_counter() - t

    t = time.perf_counter()
    pca = PCABasis().fit(X)
    pca_fit = time.perf_counter() - t
    t = time.perf_counter()
    pca.transform(X)
    pca_encode = time.perf_counter() - t

    per_m = 1e6 / (args.tokens * args.epochs)
    enc_m = 1e6 / args.tokens
    rows = [("TopK SAE train", sae_train, sae_train * per_m, f"{report.tokens_seen} token-steps measured"),
            ("TopK SAE encode", sae_encode, sae_encode * enc_m, ""),
            ("PCA fit (covariance eigh)", pca_fit, None, "one fit on the same tokens (d x d eigh + n x d^2 product)"),
            ("PCA encode", pca_encode, pca_encode * enc_m, "")]
    print(f"{'step':22s} {'measured s':>11s} {'s per 1M tokens (extrapolated)':>32s}")
    for name, measured, per_million, note in rows:
        pm = f"{per_million:32.1f}" if per_million is not None else f"{'-':>32s}"
        print(f"{name:22s} {measured:11.2f} {pm}  {note}")
    print(f"ratios: SAE training / PCA fit on the same tokens = {sae_train / max(pca_fit, 1e-9):.1f}x; "
          f"SAE encode / PCA encode = {sae_encode / max(pca_encode, 1e-9):.1f}x")
    print("per-million figures are linear extrapolations from the measured run (fixed batch size).")


if __name__ == "__main__":
    main()
