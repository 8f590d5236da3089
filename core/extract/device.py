"""Where forward passes run and in what precision: --device, --dtype, and the token budget of a batch.

auto picks a CUDA device when there is one, else Apple's mps, else the CPU; the dtype auto picks
bfloat16 on a CUDA device that supports it (float16 on one that does not) and float32 elsewhere.
"""
from __future__ import annotations

import torch

from probebank.errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Bytes of device memory a token costs during one capture pass, per unit of MLP width: the MLP's
# up/gate activations and the attention intermediates in the compute dtype, with headroom. A rough
# bound; an out-of-memory error halves the budget in any case.
BYTES_PER_TOKEN_PER_MLP_UNIT = 48
AUTO_BUDGET_SHARE = 0.5  # of the free memory once the weights are loaded


def resolve_device(spec: str = "auto") -> torch.device:
    """The torch device for --device; a device this machine lacks is a ConfigError naming it."""
    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"'{spec}' is not a device", field="--device", fix=f"use {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: this machine has no CUDA device (torch {torch.__version__}, "
                              f"built for CUDA {torch.version.cuda or 'none'})", field="--device",
                              fix="use --device cpu, or install a CUDA build of torch on a machine with a GPU")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: there are only {torch.cuda.device_count()} CUDA devices",
                              field="--device", fix=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
        return torch.device("cuda", index)
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"--device {spec}: mps is not available here", field="--device", fix="use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {spec}: unsupported device type", field="--device", fix=f"use {DEVICE_CHOICES}")
    return device


def resolve_dtype(spec: str, device: torch.device) -> str:
    """The compute dtype for --dtype on `device`."""
    text = (spec or "auto").strip().lower()
    if text not in DTYPES:
        raise ConfigError(f"'{spec}' is not a dtype", field="--dtype", fix=f"use one of: {', '.join(DTYPES)}")
    if text != "auto":
        return text
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's inputs go: the device of its input embeddings (of its first parameter otherwise),
    which is also right for a model spread over several GPUs with device_map."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    weight = getattr(emb, "weight", None)
    if isinstance(weight, torch.Tensor):
        return weight.device
    return next(model.parameters()).device


def auto_batch_tokens(device: torch.device, mlp_width: int, dtype_bytes: int) -> int | None:
    """A token budget per batch from the device's free memory; None on the CPU (batches by --batch-size)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    per_token = max(1, BYTES_PER_TOKEN_PER_MLP_UNIT * mlp_width * dtype_bytes // 4)
    return max(256, int(free * AUTO_BUDGET_SHARE) // per_token)


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
