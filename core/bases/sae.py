"""Sparse autoencoders: the weights in the common layout, and TopK training in torch.

Weights follow the common layout of published SAEs (SAELens-style): W_enc [d_in, d_sae],
b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in], optional threshold [d_sae] (JumpReLU).
Codes are f(( x - b_dec) @ W_enc + b_enc) with f = TopK (k largest, then ReLU), JumpReLU
(ReLU, kept where above the threshold) or ReLU; reconstructions are codes @ W_dec + b_dec.
As in SAELens, x may first be normalised per row (`normalize`: layer_norm, constant_norm_rescale)
and b_dec may be left out of the input (`apply_b_dec_to_input=False`); a gated SAE keeps its gate
bias in b_enc and has b_mag, r_mag: codes = [x' W_enc + b_enc > 0] * ReLU(x' (W_enc * exp r_mag) + b_mag).

TopK training follows Gao et al. 2024 ("Scaling and evaluating sparse autoencoders"): inputs
scaled to mean squared norm d_in, b_dec initialised at the mean, W_enc tied to W_dec at init,
unit-norm decoder rows, and the AuxK loss that lets dead latents model the residual error.
The input scale is folded into the saved weights, so they apply to raw activations.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class SAEWeights:
    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    activation: str = "topk"   # topk | jumprelu | relu | gated
    k: int | None = None
    threshold: np.ndarray | None = None
    apply_b_dec_to_input: bool = True
    normalize: str = "none"    # none | layer_norm | constant_norm_rescale (per row, before b_dec)
    b_mag: np.ndarray | None = None   # gated only (b_enc is then the gate bias)
    r_mag: np.ndarray | None = None

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def decodes(self) -> bool:
        """Reconstructions need no more than the codes (a per-row normalisation needs the input row's statistics)."""
        return self.normalize == "none"

    def encode(self, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
        out = np.empty((X.shape[0], self.d_sae), dtype=np.float32)
        for lo in range(0, X.shape[0], chunk):
            x = normalize_rows(np.asarray(X[lo:lo + chunk], np.float32), self.normalize)
            if self.apply_b_dec_to_input:
                x = x - self.b_dec
            pre = x @ self.W_enc + self.b_enc
            if self.activation == "gated":
                assert self.b_mag is not None and self.r_mag is not None  # checked when the weights were read
                mag = x @ (self.W_enc * np.exp(self.r_mag)) + self.b_mag
                out[lo:lo + chunk] = np.where(pre > 0, np.maximum(mag, 0.0), 0.0)
            else:
                out[lo:lo + chunk] = self._activate(pre)
        return out

    def _activate(self, pre: np.ndarray) -> np.ndarray:
        if self.activation == "topk":
            k = min(int(self.k or 1), pre.shape[1])
            idx = np.argpartition(-pre, k - 1, axis=1)[:, :k]
            codes = np.zeros_like(pre)
            vals = np.take_along_axis(pre, idx, axis=1)
            np.put_along_axis(codes, idx, np.maximum(vals, 0.0), axis=1)
            return codes
        if self.activation == "jumprelu":  # SAELens: ReLU(pre) * [pre > threshold]; a negative threshold keeps 0
            return np.where(pre > self.threshold, np.maximum(pre, 0.0), 0.0).astype(np.float32)
        return np.maximum(pre, 0.0)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, np.float32) @ self.W_dec + self.b_dec

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec}
        for name in ("threshold", "b_mag", "r_mag"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    def config(self) -> dict:
        cfg: dict = {"d_in": self.d_in, "d_sae": self.d_sae, "activation_fn": self.activation}
        if self.k is not None:
            cfg["k"] = int(self.k)
        if not self.apply_b_dec_to_input:
            cfg["apply_b_dec_to_input"] = False
        if self.normalize != "none":
            cfg["normalize_activations"] = self.normalize
        return cfg


ROW_NORMS = ("none", "layer_norm", "constant_norm_rescale")


def normalize_rows(x: np.ndarray, how: str) -> np.ndarray:
    """SAELens's run-time input normalisations (applied before b_dec is subtracted)."""
    if how == "layer_norm":  # torch's x.std is the unbiased one (n - 1); eps added to the std
        centred = x - x.mean(axis=1, keepdims=True)
        return centred / (centred.std(axis=1, ddof=1, keepdims=True) + 1e-5)
    if how == "constant_norm_rescale":  # every row to norm sqrt(d_in); an all-zero row stays zero
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x * (np.sqrt(x.shape[1]) / np.maximum(norms, 1e-30))
    return x


@dataclass
class TopKTrainConfig:
    d_sae: int
    k: int = 32
    epochs: int = 4
    batch_size: int = 512
    lr: float = 5e-4
    aux_k: int | None = None          # default: d_in // 2 (Gao et al.)
    aux_coef: float = 1.0 / 32.0
    dead_after_tokens: int = 20_000   # a latent silent this long counts as dead for AuxK
    seed: int = 0
    threads: int | None = None


@dataclass
class TrainReport:
    steps: int
    tokens_seen: int
    seconds: float
    final_fvu: float
    dead_fraction: float


def train_topk_sae(X: np.ndarray, cfg: TopKTrainConfig, *, progress: bool = True) -> tuple[SAEWeights, TrainReport]:
    """Train a TopK SAE on activations X [n, d_in]; returns weights for raw activations."""
    import torch
    from tqdm.auto import tqdm

    started = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    raw = torch.as_tensor(np.asarray(X, np.float32))
    n, d_in = raw.shape
    # Scale so that the mean squared norm is d_in: the lr and init then suit any layer.
    scale = float(np.sqrt(d_in / max(float((raw ** 2).sum(1).mean()), 1e-12)))
    data = raw * scale
    k = min(cfg.k, cfg.d_sae)
    aux_k = min(cfg.aux_k or d_in // 2, cfg.d_sae)

    W_dec = torch.randn(cfg.d_sae, d_in, generator=gen)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    W_dec = torch.nn.Parameter(W_dec)
    W_enc = torch.nn.Parameter(W_dec.detach().T.clone())
    b_enc = torch.nn.Parameter(torch.zeros(cfg.d_sae))
    b_dec = torch.nn.Parameter(data.mean(0).clone())
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    since_fired = torch.zeros(cfg.d_sae, dtype=torch.long)
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    old_threads = torch.get_num_threads()
    # Small matrices: one thread. Several threads spin-wait on tiny matmuls, 40x slower on a busy CPU.
    threads = cfg.threads or (1 if d_in * cfg.d_sae < 1_000_000 else old_threads)
    torch.set_num_threads(threads)
    bar = tqdm(total=total, desc=f"train sae-topk {d_in}->{cfg.d_sae}", unit="step", disable=not progress, leave=False)
    step, fvu = 0, float("nan")
    try:
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=gen)
            for s in range(steps_per_epoch):
                x = data[order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
                pre = (x - b_dec) @ W_enc + b_enc
                vals, idx = pre.topk(k, dim=1)
                codes = torch.zeros_like(pre).scatter(1, idx, vals.relu())
                recon = codes @ W_dec + b_dec
                err = x - recon
                var = ((x - x.mean(0)) ** 2).sum()
                loss = (err ** 2).sum() / var
                fired = torch.zeros(cfg.d_sae, dtype=torch.bool)
                fired[idx[vals > 0]] = True
                since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + x.shape[0])
                dead = since_fired >= cfg.dead_after_tokens
                if dead.any():
                    # AuxK: the top aux_k dead latents reconstruct the residual error.
                    ka = min(aux_k, int(dead.sum()))
                    dead_pre = pre.masked_fill(~dead, float("-inf"))
                    avals, aidx = dead_pre.topk(ka, dim=1)
                    aux_codes = torch.zeros_like(pre).scatter(1, aidx, avals.relu())
                    e_hat = aux_codes @ W_dec
                    e = err.detach()
                    aux = ((e - e_hat) ** 2).sum() / ((e - e.mean(0)) ** 2).sum().clamp_min(1e-12)
                    loss = loss + cfg.aux_coef * torch.nan_to_num(aux, nan=0.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                with torch.no_grad():
                    # Remove the gradient part that would change decoder row norms, then renormalise.
                    grad = W_dec.grad
                    assert grad is not None  # the loss always depends on the decoder
                    grad -= (grad * W_dec).sum(1, keepdim=True) * W_dec
                opt.step()
                with torch.no_grad():
                    W_dec.div_(W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
                fvu = float((err.detach() ** 2).sum() / var)
                step += 1
                if step % 20 == 0:
                    bar.set_postfix(fvu=f"{fvu:.3f}", dead=f"{float(dead.float().mean()):.2f}")
                bar.update(1)
    finally:
        bar.close()
        torch.set_num_threads(old_threads)
    with torch.no_grad():
        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.numpy(), dtype=np.float32)
        weights = SAEWeights(W_enc=arr(W_enc * scale), b_enc=arr(b_enc), W_dec=arr(W_dec / scale),
                             b_dec=arr(b_dec / scale), activation="topk", k=k)
    dead_frac = float((since_fired >= cfg.dead_after_tokens).float().mean())
    return weights, TrainReport(step, step * cfg.batch_size, time.perf_counter() - started, fvu, dead_frac)
