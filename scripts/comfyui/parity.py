#!/usr/bin/env python3
"""Compare an image ComfyUI made from the fixtures with diffusers' StableDiffusion3Pipeline on the same weights,
seed and settings (sd3-tiny-comfy, no T5).

    /root/refvenv/bin/python scripts/comfyui/parity.py --model /root/comfy-fixtures/sd3-tiny-comfy \\
        --comfy /root/comfy-out/txt2img.png [--prompt "a red circle at the top"] [--seed 42] [--steps 4] [--cfg 5]
        [--size 64] [--out-dir DIR] [--lora FILE] [--img2img INPUT.png --strength 0.6]

Prints PSNR and max |difference| (uint8) for three T5 paddings on the diffusers side: max_sequence_length 256 (the
pipeline's default: 256 zero T5 tokens join the 77 CLIP tokens in the joint attention), 1 (the least our engine
accepts) and 0 (only the 77 CLIP tokens, which is what ComfyUI's SD3 text encoder without T5 gives:
comfy/text_encoders/sd3_clip.py pads CLIP-L+G to 4096 wide and concatenates no T5 tokens). ComfyUI's
SaveImageWebsocket truncates 255*x to uint8 where diffusers rounds, so the diffusers image is quantized both ways. Uses one CPU thread; fp32.

--lora: diffusers load_lora_weights (scale 1), against ComfyUI's LoraLoaderModelOnly at strength 1.
--img2img: StableDiffusion3Img2ImgPipeline at --steps and --strength, against ComfyUI's LoadImage + VAEEncode +
KSampler with steps k = steps - int(steps - steps*strength) and denoise k/steps (client.py img2img-parity: the same
sigmas). diffusers samples the VAE posterior with the generator before drawing the noise (retrieve_latents,
sample_mode "sample"), ComfyUI's VAEEncode takes the mean: the pipeline is given the mean's latents, scaled as it
scales them ((mean - shift_factor) * scaling_factor), so both draw the same noise from the seed.
"""
import argparse
import math
import os

import numpy as np
import torch
from PIL import Image

from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3Pipeline


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="/root/comfy-fixtures/sd3-tiny-comfy")
    ap.add_argument("--comfy", required=True, help="the PNG ComfyUI sent (client.py --out)")
    ap.add_argument("--prompt", default="a red circle at the top")
    ap.add_argument("--negative", default="")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out-dir", help="write the diffusers images here")
    ap.add_argument("--lora", help="a LoRA file to load into the transformer (scale 1)")
    ap.add_argument("--img2img", help="the input image ComfyUI encoded (client.py saves input.png)")
    ap.add_argument("--strength", type=float, default=0.6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    comfy = np.asarray(Image.open(args.comfy).convert("RGB"))
    pipe = StableDiffusion3Pipeline.from_pretrained(args.model, text_encoder_3=None, tokenizer_3=None,
                                                    dtype=torch.float32)
    if args.lora:
        pipe.load_lora_weights(args.lora)
    extra = {}
    if args.img2img:
        pipe = StableDiffusion3Img2ImgPipeline(**pipe.components)
        pixels = pipe.image_processor.preprocess(Image.open(args.img2img).convert("RGB"), args.size, args.size)
        with torch.no_grad():
            mean = pipe.vae.encode(pixels).latent_dist.mode()
        extra = {"image": (mean - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor,
                 "strength": args.strength}
        k = args.steps - int(max(args.steps - args.steps * args.strength, 0))
        print(f"img2img from {args.img2img}: diffusers {args.steps} steps at strength {args.strength} runs {k}; "
              f"ComfyUI: steps {k}, denoise {k / args.steps}")
    else:
        extra = {"width": args.size, "height": args.size}
    pipe.set_progress_bar_config(disable=True)
    print(f"ComfyUI image {args.comfy}: {comfy.shape}; diffusers {args.model}: prompt {args.prompt!r}, "
          f"seed {args.seed}, {args.steps} steps, cfg {args.cfg}, {args.size}x{args.size}, fp32"
          + (f", LoRA {args.lora}" if args.lora else ""))
    for length in (256, 1, 0):
        image = pipe(args.prompt, negative_prompt=args.negative, num_inference_steps=args.steps,
                     guidance_scale=args.cfg, max_sequence_length=length,
                     generator=torch.Generator().manual_seed(args.seed), output_type="np", **extra).images[0]
        rounded = (image * 255).round().astype(np.uint8)  # diffusers' numpy_to_pil
        truncated = np.clip(255.0 * image, 0, 255).astype(np.uint8)  # SaveImageWebsocket
        for name, ref in (("rounded", rounded), ("truncated", truncated)):
            diff = np.abs(ref.astype(int) - comfy.astype(int))
            print(f"  max_sequence_length {length:3d}, {name:9s}: PSNR {psnr(ref, comfy):6.2f} dB, "
                  f"max |diff| {diff.max():3d}, mean |diff| {diff.mean():.3f}, pixels off by >1: "
                  f"{int((diff > 1).sum())}/{diff.size}")
        if args.out_dir:
            os.makedirs(args.out_dir, exist_ok=True)
            Image.fromarray(rounded).save(os.path.join(args.out_dir, f"diffusers-t5len{length}.png"))


if __name__ == "__main__":
    main()
