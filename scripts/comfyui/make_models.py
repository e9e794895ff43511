#!/usr/bin/env python3
"""Write the random-weight models a real ComfyUI 0.3.75 serves in our integration tests, and the same weights as a
diffusers folder our engine loads.

    /root/refvenv/bin/python scripts/comfyui/make_models.py --out /root/comfy-fixtures [--seed 0] [--no-verify]

Writes (all outside the repository; ~3.7 GB):

  OUT/sd3-tiny-comfy/           diffusers StableDiffusion3Pipeline folder, no T5 (model_index text_encoder_3 and
                                tokenizer_3 null, as diffusers saves a pipeline built with text_encoder_3=None):
      transformer               SD3Transformer2DModel, 2 layers, 2 heads x 64 (hidden 128 = caption_projection_dim),
                                patch 2, in/out 16, joint_attention_dim 4096, pooled 2048, pos_embed_max_size 64,
                                sample_size 32. ComfyUI derives depth = x_embedder out / 64 = 2, hidden 64*depth,
                                heads = depth, pos_embed_max_size = sqrt(pos_embed rows) = 64: the same model.
      text_encoder(_2), vae     FULL-size CLIP-L (identity projection, as SD3's), OpenCLIP bigG with projection,
                                16-channel SD3 VAE: ComfyUI builds its text encoders and VAE from fixed configs.
      tokenizer(_2), scheduler  real CLIP BPE vocabulary (models/sd3-demo; the same vocab.json/merges.txt as ComfyUI's
                                comfy/sd1_tokenizer), FlowMatchEulerDiscreteScheduler shift 3.0.
  OUT/comfy-models/             the same tensors in ComfyUI's model folders:
      diffusion_models/tiny-sd3.safetensors   the diffusers transformer file (ComfyUI converts the layout itself)
      diffusion_models/tiny-sd3-sai.safetensors  the same weights in Stability's MMDiT layout (joint_blocks.*)
      text_encoders/clip_l.safetensors, clip_g.safetensors   the transformers files
      vae/sd3_vae.safetensors                 the diffusers VAE file
      vae_approx/taesd3_encoder.safetensors, taesd3_decoder.safetensors   a random full-width (64-channel) TAESD3
                                              in madebyollin/taesd's single-file layout, for --preview-method taesd
      checkpoints/tiny-sd3-all.safetensors    Stability's single-file layout: model.diffusion_model.*,
                                              first_stage_model.* (LDM VAE names), text_encoders.clip_l/clip_g.*
      loras/tiny-lora.safetensors             rank-4 LoRA on every linear of the transformer's blocks, diffusers/peft
                                              names (transformer.<module>.lora_A/lora_B.weight), no alpha (scale 1)

Weights come from scripts/bench/make_random_sd3.py (seeded per tensor, streamed in fp16, each component's own init
rule); the TAESD3 and the LoRA are seeded from --seed too, so the whole tree is deterministic. Hard links share the
files the two layouts have in common. The Stability-layout conversions are scripts/fixtures/single_file.py's.
Verification (unless --no-verify): diffusers loads the folder and makes a finite 64x64 image in 2 steps, the LoRA
loads into it with no unused key, and the checkpoint's tensors map back to the diffusers ones exactly.
Uses one CPU thread.
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "bench"))
sys.path.insert(0, os.path.join(REPO, "scripts", "fixtures"))

import make_random_sd3 as bench  # noqa: E402

# ComfyUI's MMDiT: hidden = 64 * depth, heads = depth (comfy/model_detection.py detect_unet_config).
DEPTH = 2
TRANSFORMER = dict(sample_size=32, patch_size=2, in_channels=16, num_layers=DEPTH, attention_head_dim=64,
                   num_attention_heads=DEPTH, joint_attention_dim=4096, caption_projection_dim=64 * DEPTH,
                   pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=64,
                   dual_attention_layers=(), qk_norm=None)
# The modules a diffusers SD3 LoRA targets (the last block is context_pre_only: no to_add_out, no ff_context).
LORA_TARGETS = ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj",
                "attn.add_v_proj", "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj",
                "ff_context.net.2"]
LORA_RANK = 4


def specs():
    s = bench.component_specs(no_t5=True)
    library, cls, _, tiny = s["transformer"]
    s["transformer"] = (library, cls, TRANSFORMER, tiny)
    return s


def write_diffusers(folder, seed, log):
    os.makedirs(folder)
    bench.copy_static(folder, no_t5=True)
    for name, spec in specs().items():
        bench.write_component(name, spec, folder, seed, log)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(README.format(seed=seed, depth=DEPTH, hidden=64 * DEPTH))


def taesd3(seed):
    """Random TAESD3 at TAESD's real width (64 channels; comfy/taesd/taesd.py builds that size), single-file layout:
    encoder keys `N.…` = diffusers `encoder.layers.N.…`, decoder keys `N+1.…` (taesd.py's decoder starts with a
    weightless Clamp)."""
    from diffusers import AutoencoderTiny
    torch.manual_seed(seed + 3)
    model = AutoencoderTiny(in_channels=3, out_channels=3, latent_channels=16, encoder_block_out_channels=(64,) * 4,
                            decoder_block_out_channels=(64,) * 4, num_encoder_blocks=(1, 3, 3, 3),
                            num_decoder_blocks=(3, 3, 3, 1), act_fn="relu", upsample_fn="nearest")
    encoder, decoder = {}, {}
    for key, value in model.state_dict().items():
        part, layers, index, rest = key.split(".", 3)
        assert layers == "layers", key
        if part == "encoder":
            encoder[f"{int(index)}.{rest}"] = value.half().contiguous()
        else:
            decoder[f"{int(index) + 1}.{rest}"] = value.half().contiguous()
    return encoder, decoder


def tiny_lora(transformer_sd, seed):
    """lora_A [r, in] and lora_B [out, r] for every targeted Linear; both random (peft starts B at zero, which would
    change nothing), |A·B| about 0.3/sqrt(in) per entry as in scripts/fixtures/lora.py."""
    g = torch.Generator().manual_seed(seed + 7)
    out = {}
    for block in range(DEPTH):
        for target in LORA_TARGETS:
            key = f"transformer_blocks.{block}.{target}.weight"
            if key not in transformer_sd:
                continue
            rows, cols = transformer_sd[key].shape
            a = torch.randn(LORA_RANK, cols, generator=g) * (0.3 / cols ** 0.5)
            b = torch.randn(rows, LORA_RANK, generator=g) * (0.3 / LORA_RANK ** 0.5)
            out[f"transformer.transformer_blocks.{block}.{target}.lora_A.weight"] = a.half()
            out[f"transformer.transformer_blocks.{block}.{target}.lora_B.weight"] = b.half()
    return out


def link(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_comfy(folder, diffusers_folder, seed, log):
    from safetensors.torch import load_file, save_file
    from single_file import mmdit_to_original, vae_to_ldm

    # One key: safetensors writes a metadata map in no fixed order, so two keys could make the bytes differ run to run.
    made_by = {"made_by": f"scripts/comfyui/make_models.py --seed {seed}"}
    d = diffusers_folder
    transformer_file = os.path.join(d, "transformer", "diffusion_pytorch_model.safetensors")
    vae_file = os.path.join(d, "vae", "diffusion_pytorch_model.safetensors")
    link(transformer_file, os.path.join(folder, "diffusion_models", "tiny-sd3.safetensors"))
    link(os.path.join(d, "text_encoder", "model.safetensors"), os.path.join(folder, "text_encoders", "clip_l.safetensors"))
    link(os.path.join(d, "text_encoder_2", "model.safetensors"), os.path.join(folder, "text_encoders", "clip_g.safetensors"))
    link(vae_file, os.path.join(folder, "vae", "sd3_vae.safetensors"))

    transformer = load_file(transformer_file)
    sai = mmdit_to_original(transformer, DEPTH)
    save_file({k: v.contiguous() for k, v in sai.items()},
              os.path.join(folder, "diffusion_models", "tiny-sd3-sai.safetensors"), metadata=made_by)

    encoder, decoder = taesd3(seed)
    os.makedirs(os.path.join(folder, "vae_approx"), exist_ok=True)
    save_file(encoder, os.path.join(folder, "vae_approx", "taesd3_encoder.safetensors"), metadata=made_by)
    save_file(decoder, os.path.join(folder, "vae_approx", "taesd3_decoder.safetensors"), metadata=made_by)

    os.makedirs(os.path.join(folder, "loras"), exist_ok=True)
    save_file(tiny_lora(transformer, seed), os.path.join(folder, "loras", "tiny-lora.safetensors"), metadata=made_by)

    # SD3's single files carry CLIP-L without text_projection (the identity, which ours is).
    vae = load_file(vae_file)
    clip_l = load_file(os.path.join(d, "text_encoder", "model.safetensors"))
    assert torch.equal(clip_l["text_projection.weight"].float(), torch.eye(768))
    clip_g = load_file(os.path.join(d, "text_encoder_2", "model.safetensors"))
    blocks = len(json.load(open(os.path.join(d, "vae", "config.json")))["block_out_channels"])
    everything = {"model.diffusion_model." + k: v for k, v in sai.items()}
    everything |= {"first_stage_model." + k: v for k, v in vae_to_ldm(vae, blocks).items()}
    everything |= {"text_encoders.clip_l.transformer." + k: v for k, v in clip_l.items() if k != "text_projection.weight"}
    everything |= {"text_encoders.clip_g.transformer." + k: v for k, v in clip_g.items()}
    os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
    save_file({k: v.contiguous() for k, v in everything.items()},
              os.path.join(folder, "checkpoints", "tiny-sd3-all.safetensors"), metadata=made_by)
    for root, _, files in sorted(os.walk(folder)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            log(f"  {os.path.relpath(p, folder):45s} {os.path.getsize(p):>14,d} bytes")


def verify(out, log):
    from diffusers import StableDiffusion3Pipeline
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint, convert_sd3_transformer_checkpoint_to_diffusers
    from safetensors.torch import load_file

    d = os.path.join(out, "sd3-tiny-comfy")
    t0 = time.time()
    # text_encoder_3 is not one of the pipeline's optional components: a null entry must be passed explicitly.
    pipe = StableDiffusion3Pipeline.from_pretrained(d, text_encoder_3=None, tokenizer_3=None, dtype=torch.float32)
    assert pipe.text_encoder_3 is None and pipe.tokenizer_3 is None
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a red circle", negative_prompt="", width=64, height=64, num_inference_steps=2, guidance_scale=5.0,
                 generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    ok = bool(torch.isfinite(torch.from_numpy(image)).all())
    log(f"  diffusers txt2img 64x64, 2 steps: {image.shape} finite={ok} mean={image.mean():.3f} std={image.std():.3f} "
        f"({time.time() - t0:.0f}s)")

    lora = os.path.join(out, "comfy-models", "loras", "tiny-lora.safetensors")
    pipe.load_lora_weights(lora)  # diffusers raises on keys it cannot place
    n = sum(1 for k, _ in pipe.transformer.named_parameters() if "lora_A" in k)
    expected = len(load_file(lora)) // 2
    log(f"  LoRA: diffusers placed {n} lora_A of {expected} pairs")
    ok &= n == expected

    ckpt = load_file(os.path.join(out, "comfy-models", "checkpoints", "tiny-sd3-all.safetensors"))
    back = convert_sd3_transformer_checkpoint_to_diffusers(ckpt)
    ref = load_file(os.path.join(d, "transformer", "diffusion_pytorch_model.safetensors"))
    same = set(back) == set(ref) and all(torch.equal(back[k], ref[k]) for k in ref)
    log(f"  checkpoint transformer -> diffusers: {len(back)} tensors, identical={same}")
    ok &= same
    vae_config = {"down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}
    back = convert_ldm_vae_checkpoint(ckpt, vae_config)
    ref = load_file(os.path.join(d, "vae", "diffusion_pytorch_model.safetensors"))
    same = set(back) == set(ref) and all(torch.equal(back[k].reshape(ref[k].shape), ref[k]) for k in ref)
    log(f"  checkpoint vae -> diffusers: {len(back)} tensors, identical={same}")
    ok &= same
    return ok


README = """# sd3-tiny-comfy (random weights)

Written by `scripts/comfyui/make_models.py --seed {seed}` (SD3 Studio) for the ComfyUI integration tests. Random
weights: images are noise, but the same noise on every engine that maps the parameters faithfully.

- transformer: SD3Transformer2DModel with {depth} layers, {depth} heads x 64 (hidden {hidden}); the shape ComfyUI's
  model detection derives from the weights (depth = hidden / 64, heads = depth).
- text_encoder, text_encoder_2: full-size CLIP-L (identity projection) and OpenCLIP bigG; no T5 (model_index null).
- vae: full-size 16-channel SD3 AutoencoderKL. scheduler: FlowMatchEulerDiscrete, shift 3.0.
- ../comfy-models holds the same tensors in ComfyUI's folders.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--verify-only", action="store_true", help="only check a tree this script wrote")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = os.path.abspath(args.out)

    def log(msg):
        print(msg, flush=True)

    if args.verify_only:
        ok = verify(out, log)
        log(f"verification {'PASSED' if ok else 'FAILED'}")
        sys.exit(0 if ok else 1)
    if os.path.exists(out) and os.listdir(out):
        sys.exit(f"{out} exists and is not empty; refusing to overwrite")
    if os.path.commonpath([out, REPO]) == REPO:
        sys.exit(f"{out} is inside the repository; write the fixtures elsewhere")

    t0 = time.time()
    os.makedirs(out, exist_ok=True)
    log(f"writing {out}/sd3-tiny-comfy (seed {args.seed})")
    write_diffusers(os.path.join(out, "sd3-tiny-comfy"), args.seed, log)
    log(f"writing {out}/comfy-models")
    write_comfy(os.path.join(out, "comfy-models"), os.path.join(out, "sd3-tiny-comfy"), args.seed, log)
    log(f"written in {time.time() - t0:.0f}s")
    if not args.no_verify:
        ok = verify(out, log)
        log(f"verification {'PASSED' if ok else 'FAILED'}")
        if not ok:
            sys.exit(1)
    # serve.sh takes this file as the sign that the tree is complete.
    with open(os.path.join(out, "COMPLETE"), "w") as f:
        f.write(f"scripts/comfyui/make_models.py --seed {args.seed}\n")


if __name__ == "__main__":
    main()
