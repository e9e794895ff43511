#!/usr/bin/env python3
"""Write a real-size, random-weight SD3 Medium diffusers folder for whole-pipeline speed and memory runs.

    python scripts/bench/make_random_sd3.py --out /path/sd3-medium-random [--seed 0] [--no-t5] [--no-verify]
    python scripts/bench/make_random_sd3.py --out /path/sd3-medium-random --verify-only

The folder has the layout of `stabilityai/stable-diffusion-3-medium-diffusers` (model_index.json, scheduler,
text_encoder, text_encoder_2, text_encoder_3, tokenizer, tokenizer_2, tokenizer_3, transformer, vae) with the
real architectures and tensor shapes, all weights fp16 safetensors (~15 GB; ~5.5 GB with --no-t5). Parameter counts
(from the configs of `stabilityai/stable-diffusion-3-medium-diffusers`; the log prints each component's values):
MMDiT 2,028,328,000 plus the pos_embed table (1x36864x1536 = 56,623,104 values), CLIP-L text + projection
123,650,304, OpenCLIP bigG text + projection 694,659,840, T5-v1.1-XXL encoder 4,762,310,656 (incl. the shared
32128x4096 embedding), VAE 83,819,683:

  text_encoder    CLIPTextModelWithProjection, CLIP-L (768, 12 layers, 12 heads, MLP 3072, quick_gelu, proj 768)
  text_encoder_2  CLIPTextModelWithProjection, OpenCLIP bigG (1280, 32 layers, 20 heads, MLP 5120, gelu, proj 1280)
  text_encoder_3  T5EncoderModel, t5-v1_1-xxl (d_model 4096, d_ff 10240 gated-gelu, 24 layers, 64 heads x 64,
                  vocab 32128),
                  two shards model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json (5 GB shards,
                  the split of the real repo)
  transformer     SD3Transformer2DModel, SD3 Medium (24 layers, 24 heads x 64, joint 4096, caption 1536, pooled 2048,
                  pos_embed_max_size 192), one diffusion_pytorch_model.safetensors (4.2 GB, under diffusers'
                  10 GB shard size)
  vae             AutoencoderKL, 16 latent channels, [128,256,512,512], scaling 1.5305, shift 0.0609, no quant convs

It is for timing and memory, not for pictures: images are noise.

Weights: every tensor is generated straight in fp16 from its own torch.Generator seeded by sha256(seed, component,
key), and streamed into the safetensors file (no model is ever materialised; peak memory is one tensor, ~0.3 GB).
Values follow each component's own init rule: transformers CLIP (`CLIPPreTrainedModel._init_weights`) and T5
(`T5PreTrainedModel._init_weights`, which keeps the 24-layer residual stream at O(1)); the diffusers models get
PyTorch's default init variance (N(0, 1/(3 fan_in)), the variance of kaiming_uniform(a=sqrt 5)). Norm weights are 1,
biases 0. Two non-random tensors: the transformer's `pos_embed.pos_embed` is the real 2-D sin-cos table (diffusers
`PatchEmbed`, 192x192 grid, base size 64), and CLIP-L's `text_projection` is the 768x768 identity (as in SD3).
The key set is exactly what `save_pretrained` writes: the script saves a tiny model of each class (same layer counts)
with `save_pretrained` and drops the keys that it drops (T5's tied `encoder.embed_tokens.weight`; CLIP's
`position_ids` is a non-persistent buffer in transformers 5 and never appears).

Tokenizers are copied from models/sd3-demo: `tokenizer` / `tokenizer_2` carry the real CLIP BPE vocabulary (49,408);
`tokenizer_3` is the demo's 1,100-id SentencePiece T5 tokenizer (1,000 pieces + 100 <extra_id_N>), not the real
32,100-piece one: its ids stay below 1,100 < 32,128, so every id is valid for the random T5, and sequence lengths
(padding to max_sequence_length) are what timing depends on. The scheduler is the demo's FlowMatchEulerDiscrete config
with shift 3.0 (SD3 Medium's). CLIP configs use bos 49406 / eos 49407 / pad 49407 (tokenizer) and 0 (tokenizer_2),
the ids the tokenizers produce.

After writing, it verifies (unless --no-verify): (1) every safetensors header (and index) against the meta model's
state_dict: exact key set, shapes, dtype F16, contiguous offsets; (2) diffusers/transformers `from_pretrained(...,
bf16)` one component at a time with a tiny forward that must be finite (transformer [1,16,16,16] latent + 8 text
tokens; VAE bf16 decode of a 4x4 latent, fp32 decode 16x16 + encode; both CLIPs on a tokenized prompt; T5 on 8
tokens, skipped if less than 14 GB RAM is available), each in its own process so memory is returned in between
(T5-XXL's bf16 load peaks at ~19 GB RSS, half of it the mmapped fp16 files).
Deterministic for a given --seed. Uses one CPU thread.
"""
import argparse
import gc
import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "models", "sd3-demo")

TRANSFORMERS_SHARD = 5 * 10**9  # "5GB": the size the real repo's text_encoder_3 was split at (2 shards)
DIFFUSERS_SHARD = 10 * 10**9  # diffusers' default max_shard_size "10GB"


# ----------------------------------------------------------------------------------------------------------------
# configurations


def component_specs(no_t5):
    """name -> (library, class name, real kwargs, tiny kwargs with the same key names)."""
    specs = {
        "text_encoder": ("transformers", "CLIPTextModelWithProjection",
                         dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768,
                              num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5, attention_dropout=0.0,
                              initializer_range=0.02, initializer_factor=1.0,
                              bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
                         dict(hidden_size=32, intermediate_size=37, projection_dim=32, num_attention_heads=2)),
        "text_encoder_2": ("transformers", "CLIPTextModelWithProjection",
                           dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, projection_dim=1280,
                                num_hidden_layers=32, num_attention_heads=20, max_position_embeddings=77,
                                hidden_act="gelu", layer_norm_eps=1e-5, attention_dropout=0.0,
                                initializer_range=0.02, initializer_factor=1.0,
                                bos_token_id=49406, eos_token_id=49407, pad_token_id=0),
                           dict(hidden_size=32, intermediate_size=37, projection_dim=32, num_attention_heads=2)),
        "text_encoder_3": ("transformers", "T5EncoderModel",
                           dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                                relative_attention_num_buckets=32, relative_attention_max_distance=128,
                                dropout_rate=0.0, layer_norm_epsilon=1e-6, initializer_factor=1.0,
                                feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                                pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                                tie_word_embeddings=False),  # as in t5-v1_1-xxl's config (encoder: no effect)
                           dict(vocab_size=128, d_model=16, d_kv=8, d_ff=24, num_heads=2)),
        "transformer": ("diffusers", "SD3Transformer2DModel",
                        dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24, attention_head_dim=64,
                             num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                             pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=192,
                             dual_attention_layers=(), qk_norm=None),
                        dict(sample_size=16, attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
                             caption_projection_dim=16, pooled_projection_dim=32, pos_embed_max_size=16)),
        "vae": ("diffusers", "AutoencoderKL",
                dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                     up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
                     layers_per_block=2, act_fn="silu", latent_channels=16, norm_num_groups=32, sample_size=1024,
                     scaling_factor=1.5305, shift_factor=0.0609, latents_mean=None, latents_std=None,
                     force_upcast=True, use_quant_conv=False, use_post_quant_conv=False,
                     mid_block_add_attention=True),
                dict(block_out_channels=[8, 16, 32, 32], norm_num_groups=4, sample_size=32)),
    }
    if no_t5:
        del specs["text_encoder_3"]
    return specs


def build(name, spec, tiny=False, device="meta"):
    library, cls_name, kwargs, tiny_kwargs = spec
    kwargs = dict(kwargs, **(tiny_kwargs if tiny else {}))
    with torch.device(device):
        if library == "transformers":
            import transformers
            cls = getattr(transformers, cls_name)
            config = cls.config_class(**kwargs)
            model = cls(config)
        else:
            import diffusers
            model = getattr(diffusers, cls_name)(**kwargs)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# key sets: what save_pretrained writes


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header, 8 + n


def saved_keys(folder):
    keys = set()
    for fn in os.listdir(folder):
        if fn.endswith(".safetensors"):
            header, _ = read_header(os.path.join(folder, fn))
            keys |= {k for k in header if k != "__metadata__"}
    return keys


def expected_keys(name, spec, meta_model):
    """Keys (in state_dict order) that save_pretrained would write for the real-size model.

    A tiny model of the same class and layer counts is saved with save_pretrained; the keys of its state_dict that the
    file lacks (tied weights) are dropped from the real model's state_dict."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    tiny = build(name, spec, tiny=True, device="cpu")
    tiny_sd = tiny.state_dict()
    real_sd = meta_model.state_dict()
    if set(tiny_sd) != set(real_sd):
        raise SystemExit(f"{name}: tiny model's keys differ from the real one's: "
                         f"{sorted(set(tiny_sd) ^ set(real_sd))[:5]}")
    with tempfile.TemporaryDirectory() as tmp:
        tiny.save_pretrained(tmp)
        written = saved_keys(tmp)
    if not written <= set(tiny_sd):
        raise SystemExit(f"{name}: save_pretrained wrote keys not in state_dict: {sorted(written - set(tiny_sd))}")
    dropped = set(tiny_sd) - written
    return [k for k in real_sd if k not in dropped], sorted(dropped)


# ----------------------------------------------------------------------------------------------------------------
# values


def tensor_seed(seed, component, key):
    digest = hashlib.sha256(f"{seed}:{component}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def init_rule(component, model, key, shape):
    """('ones'|'zeros'|'eye'|'pos_embed',) or ('normal', std)."""
    modname, pname = key.rsplit(".", 1)
    mod = model.get_submodule(modname)
    cls = type(mod).__name__
    if component == "transformer" and key == "pos_embed.pos_embed":
        return ("pos_embed",)
    if pname == "bias":
        return ("zeros",)
    if isinstance(mod, (torch.nn.LayerNorm, torch.nn.GroupNorm)) or "Norm" in cls:
        return ("ones",)
    cfg = getattr(model, "config", None)
    if component in ("text_encoder", "text_encoder_2"):  # transformers CLIPPreTrainedModel._init_weights
        d, n_layers, f = cfg.hidden_size, cfg.num_hidden_layers, cfg.initializer_factor
        last = modname.rsplit(".", 1)[-1]
        if last in ("token_embedding", "position_embedding"):
            return ("normal", 0.02 * f)
        if last in ("q_proj", "k_proj", "v_proj"):
            return ("normal", d**-0.5 * (2 * n_layers) ** -0.5 * f)
        if last == "out_proj":
            return ("normal", d**-0.5 * f)
        if last == "fc1":
            return ("normal", (2 * d) ** -0.5 * f)
        if last == "fc2":
            return ("normal", d**-0.5 * (2 * n_layers) ** -0.5 * f)
        if key == "text_projection.weight":
            return ("eye",) if component == "text_encoder" else ("normal", d**-0.5 * f)
        raise SystemExit(f"{component}: no init rule for {key}")
    if component == "text_encoder_3":  # transformers T5PreTrainedModel._init_weights
        d, dkv, h, dff, f = cfg.d_model, cfg.d_kv, cfg.num_heads, cfg.d_ff, cfg.initializer_factor
        last = modname.rsplit(".", 1)[-1]
        table = {"shared": 1.0, "embed_tokens": 1.0, "q": (d * dkv) ** -0.5, "k": d**-0.5, "v": d**-0.5,
                 "o": (h * dkv) ** -0.5, "relative_attention_bias": d**-0.5, "wi_0": d**-0.5, "wi_1": d**-0.5,
                 "wo": dff**-0.5}
        if last in table:
            return ("normal", table[last] * f)
        raise SystemExit(f"{component}: no init rule for {key}")
    # diffusers models: PyTorch's default Linear/Conv init variance, 1 / (3 fan_in)
    fan_in = shape[1] * math.prod(shape[2:]) if len(shape) >= 2 else shape[0]
    return ("normal", (3 * fan_in) ** -0.5)


def sd3_pos_embed(spec):
    from diffusers.models.embeddings import PatchEmbed
    kw = spec[2]
    pe = PatchEmbed(height=kw["sample_size"], width=kw["sample_size"], patch_size=kw["patch_size"],
                    in_channels=kw["in_channels"], embed_dim=kw["num_attention_heads"] * kw["attention_head_dim"],
                    pos_embed_max_size=kw["pos_embed_max_size"])
    return pe.pos_embed.detach().to(torch.float16)


def make_tensor(rule, shape, seed, component, key, extras):
    kind = rule[0]
    if kind == "zeros":
        return torch.zeros(shape, dtype=torch.float16)
    if kind == "ones":
        return torch.ones(shape, dtype=torch.float16)
    if kind == "eye":
        return torch.eye(shape[0], shape[1], dtype=torch.float16)
    if kind == "pos_embed":
        t = extras["pos_embed"]
        assert tuple(t.shape) == tuple(shape), (t.shape, shape)
        return t
    g = torch.Generator().manual_seed(tensor_seed(seed, component, key))
    return torch.empty(shape, dtype=torch.float16).normal_(0.0, rule[1], generator=g)


# ----------------------------------------------------------------------------------------------------------------
# writing


def write_safetensors(path, keys, shapes, produce):
    """Stream a safetensors file: header, then each tensor as it is generated (library order: sorted names)."""
    order = sorted(keys)
    header, offset = {}, 0
    for k in order:
        n = math.prod(shapes[k]) * 2
        header[k] = {"dtype": "F16", "shape": list(shapes[k]), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for k in order:
            t = produce(k).contiguous()
            assert t.dtype == torch.float16 and tuple(t.shape) == tuple(shapes[k]), k
            f.write(t.view(torch.int16).numpy().data)
            del t
    return 8 + len(hb) + offset


def shard(keys, shapes, max_size):
    """huggingface_hub's greedy split (state_dict order)."""
    shards, cur, cur_size = [], [], 0
    for k in keys:
        size = math.prod(shapes[k]) * 2
        if size > max_size:
            shards.append([k])
            continue
        if cur and cur_size + size > max_size:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append(k)
        cur_size += size
    if cur:
        shards.append(cur)
    return shards


def write_config(name, spec, model, folder):
    library = spec[0]
    if library == "transformers":
        config = model.config
        config.architectures = [spec[1]]
        config.dtype = torch.float16
        config.save_pretrained(folder)
    else:
        model.save_config(folder)


def write_component(name, spec, out, seed, log):
    folder = os.path.join(out, name)
    os.makedirs(folder)
    model = build(name, spec)
    keys, dropped = expected_keys(name, spec, model)
    sd = model.state_dict()
    shapes = {k: tuple(sd[k].shape) for k in keys}
    write_config(name, spec, model, folder)
    extras = {"pos_embed": sd3_pos_embed(spec)} if name == "transformer" else {}
    rules = {k: init_rule(name, model, k, shapes[k]) for k in keys}

    def produce(k):
        return make_tensor(rules[k], shapes[k], seed, name, k, extras)

    total_data = sum(math.prod(s) * 2 for s in shapes.values())
    library = spec[0]
    base = "model" if library == "transformers" else "diffusion_pytorch_model"
    groups = shard(keys, shapes, TRANSFORMERS_SHARD if library == "transformers" else DIFFUSERS_SHARD)
    written = 0
    t0 = time.time()
    if len(groups) == 1:
        written += write_safetensors(os.path.join(folder, f"{base}.safetensors"), keys, shapes, produce)
    else:
        weight_map = {}
        for i, group in enumerate(groups, 1):
            fn = f"{base}-{i:05d}-of-{len(groups):05d}.safetensors"
            written += write_safetensors(os.path.join(folder, fn), group, shapes, produce)
            weight_map.update({k: fn for k in group})
            log(f"    {fn}: {sum(math.prod(shapes[k]) * 2 for k in group) / 1e9:.2f} GB")
        metadata = {"total_size": total_data}
        if library == "transformers":
            metadata["total_parameters"] = sum(p.numel() for p in model.parameters())
        index = {"metadata": metadata, "weight_map": weight_map}
        with open(os.path.join(folder, f"{base}.safetensors.index.json"), "w") as f:
            f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    n_params = sum(math.prod(s) for s in shapes.values())
    log(f"  {name:15s} {spec[1]:28s} {len(keys):4d} tensors {n_params:>14,d} values  {written / 1e9:6.2f} GB "
        f"in {len(groups)} file(s), {time.time() - t0:.0f}s" + (f"  (dropped tied: {dropped})" if dropped else ""))
    del model, sd, extras
    gc.collect()
    return written


def copy_static(out, no_t5):
    with open(os.path.join(DEMO, "model_index.json")) as f:
        index = json.load(f)
    if no_t5:
        index["text_encoder_3"] = [None, None]
        index["tokenizer_3"] = [None, None]
    with open(os.path.join(out, "model_index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    os.makedirs(os.path.join(out, "scheduler"))
    with open(os.path.join(DEMO, "scheduler", "scheduler_config.json")) as f:
        sched = json.load(f)
    sched["shift"] = 3.0
    sched["use_dynamic_shifting"] = False
    with open(os.path.join(out, "scheduler", "scheduler_config.json"), "w") as f:
        f.write(json.dumps(sched, indent=2, sort_keys=True) + "\n")
    for tok in ["tokenizer", "tokenizer_2"] + ([] if no_t5 else ["tokenizer_3"]):
        shutil.copytree(os.path.join(DEMO, tok), os.path.join(out, tok))


README = """# SD3 Medium, random weights (benchmark folder)

Written by `scripts/bench/make_random_sd3.py --seed {seed}{no_t5}` (SD3 Studio). Same layout, architectures, tensor
names and shapes as `stabilityai/stable-diffusion-3-medium-diffusers`, fp16 safetensors, **random weights**: images are
noise. For whole-pipeline speed and memory measurements only.

- tokenizer, tokenizer_2: real CLIP BPE vocabulary (copied from models/sd3-demo).
- tokenizer_3: the demo's 1,100-id SentencePiece T5 tokenizer, not the real 32,100-piece one; its ids (< 1,100) are
  valid for the 32,128-row T5 embedding; sequence lengths, hence timings, are as with the real tokenizer.
- scheduler: FlowMatchEulerDiscreteScheduler, shift 3.0.
- transformer `pos_embed.pos_embed` is the real sin-cos table; CLIP-L `text_projection` is the identity.
"""


# ----------------------------------------------------------------------------------------------------------------
# verification


def verify_headers(out, specs, log):
    ok = True
    for name, spec in specs.items():
        folder = os.path.join(out, name)
        model = build(name, spec)
        sd = model.state_dict()
        files = sorted(fn for fn in os.listdir(folder) if fn.endswith(".safetensors"))
        found, problems, data = {}, [], 0
        for fn in files:
            header, start = read_header(os.path.join(folder, fn))
            end = 0
            for k, v in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                               key=lambda kv: kv[1]["data_offsets"][0]):
                if k in found:
                    problems.append(f"{k} twice")
                found[k] = fn
                if v["dtype"] != "F16":
                    problems.append(f"{k} dtype {v['dtype']}")
                if k in sd and list(sd[k].shape) != v["shape"]:
                    problems.append(f"{k} shape {v['shape']} != {list(sd[k].shape)}")
                b, e = v["data_offsets"]
                if b != end or e - b != math.prod(v["shape"]) * 2:
                    problems.append(f"{k} offsets {b}..{e}")
                end = e
            data += end
            if os.path.getsize(os.path.join(folder, fn)) != start + end:
                problems.append(f"{fn}: size {os.path.getsize(os.path.join(folder, fn))} != {start + end}")
        index_files = [fn for fn in os.listdir(folder) if fn.endswith(".safetensors.index.json")]
        for fn in index_files:
            with open(os.path.join(folder, fn)) as f:
                index = json.load(f)
            if index["weight_map"] != found:
                problems.append(f"{fn}: weight_map differs from the files")
            if index["metadata"]["total_size"] != data:
                problems.append(f"{fn}: total_size {index['metadata']['total_size']} != {data}")
        tied = set()
        if name == "text_encoder_3":
            tied = {"encoder.embed_tokens.weight"}  # tied to shared.weight; save_pretrained drops it
        missing = set(sd) - set(found) - tied
        extra = set(found) - set(sd)
        if missing:
            problems.append(f"missing {sorted(missing)[:5]} ({len(missing)})")
        if extra:
            problems.append(f"unexpected {sorted(extra)[:5]} ({len(extra)})")
        if tied & set(found):
            problems.append(f"tied keys written: {sorted(tied & set(found))}")
        status = "OK" if not problems else "FAIL: " + "; ".join(problems[:8])
        log(f"  headers {name:15s} {len(found):4d} keys in {len(files)} file(s)"
            f"{' + index' if index_files else ''} vs meta state_dict {len(sd)} keys"
            f"{' (minus tied ' + ', '.join(sorted(tied)) + ')' if tied else ''}: {status}")
        ok &= not problems
        del model, sd
    return ok


def mem_available_gb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def rss_gb(field="VmRSS"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def describe(name, t):
    t = t.float()
    finite = bool(torch.isfinite(t).all())
    return finite, f"{name} {tuple(t.shape)} finite={finite} std={t.std().item():.4g} max|x|={t.abs().max().item():.4g}"


def verify_forward(out, specs, log, only):
    """Run the check named `only` in this process (main() runs each one in its own process, so that memory is
    returned between steps and the peak RSS printed is that step's own)."""
    from diffusers import AutoencoderKL, SD3Transformer2DModel
    from transformers import AutoTokenizer, CLIPTextModelWithProjection, T5EncoderModel

    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()  # "accelerate not found" notice
    transformers.utils.logging.disable_progress_bar()
    bf16 = torch.bfloat16
    results = {}
    g = torch.Generator().manual_seed(0)
    prompt = "a photograph of an astronaut riding a horse on the moon"

    def step(name, fn):
        t0 = time.time()
        try:
            with torch.inference_mode():
                ok, msg = fn()
        except Exception as e:  # report and go on
            ok, msg = False, f"ERROR {type(e).__name__}: {e}"
        gc.collect()
        results[name] = ok
        log(f"  forward {name:15s} {'OK' if ok else 'FAIL'}  {msg}  ({time.time() - t0:.0f}s, "
            f"process peak RSS {rss_gb('VmHWM'):.1f} GB incl. mmapped weight files)")

    def transformer():
        m = SD3Transformer2DModel.from_pretrained(os.path.join(out, "transformer"), torch_dtype=bf16)
        peak = rss_gb()
        x = torch.randn(1, 16, 16, 16, generator=g).to(bf16)
        ctx = torch.randn(1, 8, 4096, generator=g).to(bf16)
        pooled = torch.randn(1, 2048, generator=g).to(bf16)
        y = m(hidden_states=x, encoder_hidden_states=ctx, pooled_projections=pooled,
              timestep=torch.tensor([500.0]), return_dict=False)[0]
        ok, msg = describe("out", y)
        del m
        return ok, f"loaded bf16 (RSS {peak:.1f} GB); {msg}"

    def vae():
        # bf16 convolutions are ~200x slower than fp32 on CPUs without native bf16 (a 16x16 latent would take
        # ~40 min), so the bf16 decode uses a 4x4 latent; then the same weights, upcast, decode 16x16 and encode.
        m = AutoencoderKL.from_pretrained(os.path.join(out, "vae"), torch_dtype=bf16)
        z = torch.randn(1, 16, 16, 16, generator=g)
        img = m.decode((z[:, :, :4, :4] / m.config.scaling_factor + m.config.shift_factor).to(bf16),
                       return_dict=False)[0]
        ok1, msg1 = describe("bf16 decode", img)
        m = m.float()
        img = m.decode(z / m.config.scaling_factor + m.config.shift_factor, return_dict=False)[0]
        ok2, msg2 = describe("fp32 decode", img)
        post = m.encode(img.clamp(-1, 1)).latent_dist
        ok3, msg3 = describe("fp32 encode mean", post.mean)
        del m
        return ok1 and ok2 and ok3, f"{msg1}; {msg2}; {msg3}"

    def clip(sub, tok):
        def run():
            m = CLIPTextModelWithProjection.from_pretrained(os.path.join(out, sub), dtype=bf16)
            tk = AutoTokenizer.from_pretrained(os.path.join(out, tok))
            ids = tk(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            o = m(ids, output_hidden_states=True)
            ok1, msg1 = describe("text_embeds", o.text_embeds)
            ok2, msg2 = describe("hidden_states[-2]", o.hidden_states[-2])
            del m
            return ok1 and ok2, f"{msg1}; {msg2}"
        return run

    def t5():
        avail = mem_available_gb()
        if avail < 14:
            return True, f"SKIPPED: only {avail:.1f} GB RAM available (needs ~12 GB for bf16 T5-XXL)"
        m = T5EncoderModel.from_pretrained(os.path.join(out, "text_encoder_3"), dtype=bf16)
        peak = rss_gb()
        tk = AutoTokenizer.from_pretrained(os.path.join(out, "tokenizer_3"))
        ids = tk(prompt, padding="max_length", max_length=8, truncation=True, return_tensors="pt").input_ids
        y = m(ids).last_hidden_state
        ok, msg = describe("last_hidden_state", y)
        del m
        return ok, f"loaded bf16 (RSS {peak:.1f} GB), ids {ids.tolist()[0]}; {msg}"

    checks = {"transformer": transformer, "vae": vae, "text_encoder": clip("text_encoder", "tokenizer"),
              "text_encoder_2": clip("text_encoder_2", "tokenizer_2"), "text_encoder_3": t5}
    step(only, checks[only])
    return all(results.values())


# ----------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-t5", action="store_true", help="skip text_encoder_3 / tokenizer_3 (model_index: null)")
    ap.add_argument("--no-verify", action="store_true", help="skip the header and forward checks")
    ap.add_argument("--verify-only", action="store_true", help="only verify an existing folder written by this script")
    ap.add_argument("--verify-step", help=argparse.SUPPRESS)  # internal: one forward check, in a child process
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = os.path.abspath(args.out)

    def log(msg):
        print(msg, flush=True)

    if args.verify_step:
        specs = component_specs(args.no_t5)
        sys.exit(0 if verify_forward(out, specs, log, args.verify_step) else 1)
    if args.verify_only:
        with open(os.path.join(out, "model_index.json")) as f:
            args.no_t5 = json.load(f).get("text_encoder_3", [None])[0] is None
        return verify(out, args.no_t5, log, time.time())
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        sys.exit(f"{out} exists and is not an empty folder; refusing to overwrite")
    if os.path.commonpath([out, REPO]) == REPO:
        log(f"warning: {out} is inside the repository; never commit these weights")

    specs = component_specs(args.no_t5)
    need = 0
    for name, spec in specs.items():
        need += sum(t.numel() * 2 for t in build(name, spec).state_dict().values())
    parent = out if os.path.isdir(out) else os.path.dirname(out)
    free = shutil.disk_usage(parent).free
    log(f"need ~{need / 1e9:.1f} GB (before dropping tied weights), {free / 1e9:.1f} GB free on {parent}")
    if free < need + 2 * 10**9:
        sys.exit("not enough free disk space (need the weights + 2 GB)")

    t_start = time.time()
    os.makedirs(out, exist_ok=True)
    copy_static(out, args.no_t5)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(README.format(seed=args.seed, no_t5=" --no-t5" if args.no_t5 else ""))
    log(f"writing {out} (seed {args.seed})")
    sizes = {}
    for name, spec in specs.items():
        sizes[name] = write_component(name, spec, out, args.seed, log)
    total = sum(sizes.values())
    log("sizes (bytes):")
    for name, size in sizes.items():
        log(f"  {name:15s} {size:>15,d}  ({size / 1e9:.2f} GB)")
    log(f"  {'total':15s} {total:>15,d}  ({total / 1e9:.2f} GB)")
    log(f"written in {time.time() - t_start:.0f}s")

    if args.no_verify:
        return
    verify(out, args.no_t5, log, t_start)


def verify(out, no_t5, log, t_start):
    t0 = time.time()
    specs = component_specs(no_t5)
    log("verify (1): safetensors headers vs meta state_dict")
    ok = verify_headers(out, specs, log)
    log("verify (2): from_pretrained bf16 + tiny forward, one component at a time, each in its own process")
    for name in ["transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"]:
        if name in specs:
            cmd = [sys.executable, os.path.abspath(__file__), "--out", out, "--verify-step", name]
            ok &= subprocess.run(cmd + (["--no-t5"] if no_t5 else [])).returncode == 0
    log(f"verification {'PASSED' if ok else 'FAILED'} in {time.time() - t0:.0f}s; total {time.time() - t_start:.0f}s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
