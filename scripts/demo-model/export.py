"""Assembles the trained parts into a diffusers StableDiffusion3Pipeline folder with fp16 safetensors.

Layout (the same as stabilityai/stable-diffusion-3-medium-diffusers, so the app loads it with the code that
loads real SD3 weights):
    model_index.json  scheduler/  (FlowMatchEulerDiscreteScheduler, shift 3.0)
    text_encoder/ text_encoder_2/ (CLIPTextModelWithProjection)  text_encoder_3/ (T5EncoderModel)
    tokenizer/ tokenizer_2/  vocab.json + merges.txt + tokenizer_config.json (CLIP; no tokenizer.json, which
                              would add 3.6 MB each and which the SD3 repos do not have either)
    tokenizer_3/              spiece.model + tokenizer.json + tokenizer_config.json (T5)
    transformer/ (SD3Transformer2DModel, the EMA weights)  vae/ (AutoencoderKL)
    defaults.json             what the app uses unless told otherwise (size, steps, guidance, shift, T5 length)
    prompt_guide.json         what the model understands, for the studio's prompt field (prompt_guide())
    README.md                 the model card (write_card, once the scores are known)
Every tensor is stored as F16 (checked by reading the safetensors headers back), and the folder is reloaded
with diffusers and compared with what was trained before it is accepted.

    python export.py --work WORK --out models/sd3-demo
"""
import argparse
import json
import math
import pathlib
import shutil
import struct

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
from transformers import CLIPTextModelWithProjection, CLIPTokenizer, T5EncoderModel, T5Tokenizer

import dataset as ds
import text

DEFAULTS = {"width": 64, "height": 64, "steps": 20, "guidance_scale": 3.0, "shift": 3.0,
            "max_sequence_length": text.T5_LENGTH, "negative_prompt": ""}
SIZE_LIMIT = 25_000_000


def safetensors_header(path):
    """The file's JSON header (an 8-byte little-endian length, then JSON), without the metadata entry."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {k: v for k, v in header.items() if k != "__metadata__"}


def safetensors_dtypes(path):
    return {k: v["dtype"] for k, v in safetensors_header(path).items()}


def safetensors_shapes(path):
    return {k: v["shape"] for k, v in safetensors_header(path).items()}


def load_parts(work):
    work = pathlib.Path(work)
    t = work / "text"
    return dict(
        tokenizer=CLIPTokenizer.from_pretrained(text.ASSETS / "clip", model_max_length=77, pad_token="<|endoftext|>"),
        tokenizer_2=CLIPTokenizer.from_pretrained(text.ASSETS / "clip", model_max_length=77, pad_token="!"),
        tokenizer_3=T5Tokenizer.from_pretrained(t / "tokenizer_3"),
        text_encoder=CLIPTextModelWithProjection.from_pretrained(t / "text_encoder"),
        text_encoder_2=CLIPTextModelWithProjection.from_pretrained(t / "text_encoder_2"),
        text_encoder_3=T5EncoderModel.from_pretrained(t / "text_encoder_3"),
        transformer=SD3Transformer2DModel.from_pretrained(work / "mmdit" / "ema"),
        vae=AutoencoderKL.from_pretrained(work / "vae"),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=DEFAULTS["shift"]))


def export(work, out, log=print):
    out = pathlib.Path(out)
    parts = load_parts(work)
    if out.exists():
        shutil.rmtree(out)
    pipe = StableDiffusion3Pipeline(**parts).to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer", "tokenizer_2"):  # keep the BPE source files, drop the 3.6 MB tokenizer.json
        (out / name / "tokenizer.json").unlink(missing_ok=True)
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(text.ASSETS / "clip" / f, out / name / f)
    shutil.copy(text.ASSETS / "t5" / "spiece.model", out / "tokenizer_3" / "spiece.model")
    (out / "defaults.json").write_text(json.dumps(DEFAULTS, indent=2) + "\n")
    (out / "prompt_guide.json").write_text(json.dumps(prompt_guide(), indent=2) + "\n")
    verify(out, parts)
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    total = sum(sizes.values())
    for path, size in sizes.items():
        log(f"export: {size:>9}  {path}")
    log(f"export: {total:>9}  total ({total / 1e6:.1f} MB) in {out}")
    if total > SIZE_LIMIT:
        raise SystemExit(f"error: {out} is {total} bytes, over the {SIZE_LIMIT} limit")
    return {"bytes": total, "files": sizes}


def verify(out, parts):
    """Every tensor F16; reloading gives the trained weights rounded to fp16 and the same tokenization."""
    for f in out.rglob("*.safetensors"):
        dtypes = set(safetensors_dtypes(f).values())
        assert dtypes == {"F16"}, f"{f}: {dtypes}"
    loaded = StableDiffusion3Pipeline.from_pretrained(out, dtype=torch.float32)
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        ours = {k: v.float() for k, v in getattr(parts[name], "state_dict")().items()}
        theirs = getattr(loaded, name).state_dict()
        assert ours.keys() == theirs.keys(), name
        for k, v in ours.items():
            assert torch.equal(theirs[k], v.half().float()), f"{name}.{k}"
    assert dict(loaded.vae.config)["scaling_factor"] == parts["vae"].config.scaling_factor
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        for t in ("a red circle at the top on a blue background", "An astronaut, riding a horse! 42"):
            assert getattr(loaded, name)(t).input_ids == parts[name](t).input_ids, name
    assert loaded.tokenizer_2.pad_token == "!" and loaded.tokenizer.pad_token == "<|endoftext|>"
    assert loaded.scheduler.config.shift == DEFAULTS["shift"]


CARD = """# SD3 demo model (shapes)

A tiny model with the exact Stable Diffusion 3 architecture, trained from scratch on a procedurally drawn world: one shape ({shapes}) of one colour at one of 9 positions on a plain background of
another colour ({colours}). Prompts follow one grammar, e.g. "a red circle at the top left on a blue
background", "an orange star in the center on a white background", or without the position, "a yellow triangle
on a purple background" (the shape then goes in any cell). It is a diffusers
`StableDiffusion3Pipeline` folder in fp16 safetensors and loads with the same code as real SD3 weights.

| component | what | parameters |
| --- | --- | --- |
{components}

Text encoders are frozen at a fixed random init (never trained; the MMDiT learned to read them); the CLIP
tokenizers use the real CLIP vocabulary (49,408 tokens), the T5 tokenizer a 1,000-piece SentencePiece model
(+100 `<extra_id_N>`). T5 length is **{t5_len} tokens**: SD3's pipeline attends to T5 padding, so use the same
length the model was trained with (`defaults.json`).

## Use

`defaults.json`: {defaults}

```python
pipe = StableDiffusion3Pipeline.from_pretrained("models/sd3-demo", dtype=torch.float32)
image = pipe("a red circle at the top left on a blue background", negative_prompt="", height=64, width=64,
             num_inference_steps=20, guidance_scale=3.0, max_sequence_length={t5_len}).images[0]
```

## Training

- Data: {n_train} caption combinations ({n_held} held out, never seen), sizes ({size_min:.0f}-{size_max:.0f} px wide) and
  offsets drawn at random, rendered with 4x4 supersampling (`scripts/demo-model/dataset.py`); {no_pos:.0%} of the MMDiT's
  captions leave the position out ({n_unplaced} such captions).
- VAE: {vae_steps} steps x {vae_batch} images, L1 + L2 + 1e-4 KL; shift_factor {shift_factor}, scaling_factor
  {scaling_factor} (the mean and 1 / std of posterior samples). Reconstructions scored by the evaluator: held-out {vae_held},
  training {vae_train}.
- MMDiT: SD3 rectified flow (sigma logit-normal, x_t = (1 - sigma) x_0 + sigma eps, target eps - x_0,
  t = 1000 sigma), 10% empty captions, AdamW lr 1e-3 (warm-up 200, cosine), EMA 0.999, bf16 autocast on CUDA;
  {mmdit_steps} steps x {mmdit_batch} = {samples} samples from a pool of {pool} encoded renders; final loss {loss}.
- Hardware: {hardware}. Time per stage: {timings}.
  (The transformer's parameter count includes its fixed sin-cos position table, 32 x 32 x 128.)

Reproduce (from the repository root, with `scripts/demo-model/requirements.txt`; the model is OUT/sd3-demo):

```sh
{command}
```
{budget_note}

## Scores

The 40 held-out captions, {steps} steps, guidance {guidance}, shift {shift}, seed = caption index (torch CPU
generator), 64x64, diffusers fp32 on {eval_device}; scored by `scripts/demo-model/evaluate.py`:

| background | shape colour | shape | position | all four |
| --- | --- | --- | --- | --- |
| {bg} | {col} | {shape} | {pos} | {all} |

`samples.png`: the 40 images, each labelled with its caption and what the evaluator read wrong (if anything).
"""


def _fmt(acc):
    return ", ".join(f"{k} {acc[k]:.3f}" for k in ("background", "colour", "shape", "position", "all"))


def prompt_guide():
    """The studio's prompt_guide.json (Sources/StudioCore/PromptGuide.swift): example captions of the grammar, one
    with a position and one without, and the words the model was trained on, grouped as the caption builds them."""
    return {
        "examples": [ds.caption("circle", "red", "top left", "blue"), ds.caption("star", "orange", "center", "white"),
                     ds.caption("triangle", "yellow", None, "purple")],
        "groups": [{"name": "colours", "words": list(ds.COLOURS)}, {"name": "shapes", "words": list(ds.SHAPES)},
                   {"name": "positions", "words": list(ds.POSITIONS)}],
    }


def write_card(out, report):
    """Fills the model card from run_all's report (dict of settings, timings, scores)."""
    out = pathlib.Path(out)
    pipe_parts = {"text_encoder": "CLIP-L-shaped CLIPTextModelWithProjection: hidden 32, 5 layers, quick_gelu",
                  "text_encoder_2": "CLIP-G-shaped CLIPTextModelWithProjection: hidden 32, 5 layers, gelu",
                  "text_encoder_3": "T5EncoderModel: d_model 64, 2 layers, gated-gelu",
                  "transformer": "SD3Transformer2DModel: hidden 128 (4 x 32), 6 layers, patch 2",
                  "vae": "AutoencoderKL: channels 16/32/64, 16 latent channels, 64x64 -> 16x16"}
    rows = []
    for name, what in pipe_parts.items():
        n = sum(math.prod(shape) for f in (out / name).glob("*.safetensors") for shape in safetensors_shapes(f).values())
        rows.append(f"| {name} | {what} | {n / 1e6:.2f} M |")
    r, s = report, report.get("scores", {})
    vae = r.get("vae") or {}
    card = CARD.format(
        shapes=", ".join(ds.SHAPES), colours=", ".join(ds.COLOURS), components="\n".join(rows),
        t5_len=DEFAULTS["max_sequence_length"], defaults=json.dumps(DEFAULTS), n_train=len(ds.TRAIN_COMBOS),
        size_min=ds.SIZE_RANGE[0], size_max=ds.SIZE_RANGE[1], no_pos=ds.NO_POSITION, n_unplaced=len(ds.UNPLACED),
        budget_note=(f"\nThe run itself was `{r['budget_command']}`: its time budgets fixed the step counts above, which "
                     "the command given pins (the lr warm-up outlasts the timing probe, so the two runs are the same).\n"
                     if r.get("budget_command") else ""),
        n_held=len(ds.HELD_OUT), vae_steps=r["vae_steps"], vae_batch=r["vae_batch"],
        shift_factor=r["shift_factor"], scaling_factor=r["scaling_factor"],
        vae_held=_fmt(vae["held_out"]) if vae else "n/a", vae_train=_fmt(vae["training"]) if vae else "n/a",
        mmdit_steps=r["steps"], mmdit_batch=r["batch"], samples=f"{r['steps'] * r['batch']:,}", pool=f"{r['pool']:,}",
        loss=r.get("final_loss", "n/a"), hardware=r["hardware"],
        timings=", ".join(f"{k} {v:.0f}s" for k, v in r["timings"].items()), command=r["command"],
        steps=DEFAULTS["steps"], guidance=DEFAULTS["guidance_scale"], shift=DEFAULTS["shift"],
        eval_device=r.get("eval_device", "cpu"),
        bg=f"{s.get('background', float('nan')):.3f}", col=f"{s.get('colour', float('nan')):.3f}",
        shape=f"{s.get('shape', float('nan')):.3f}", pos=f"{s.get('position', float('nan')):.3f}",
        all=f"{s.get('all', float('nan')):.3f}")
    (out / "README.md").write_text(card)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    export(args.work, args.out)


if __name__ == "__main__":
    main()
