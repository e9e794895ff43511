"""Tokenizers, frozen random text encoders and the prompt-embedding cache of the demo model.

SD3 has three text encoders: CLIP-L and CLIP-G (CLIPTextModelWithProjection) and T5 (T5EncoderModel). The demo
model keeps the exact classes and wiring at toy widths, with weights at a fixed random init that is never
trained: the MMDiT learns to read whatever features they give. Prompt embeddings therefore depend only on the
caption, and all of them (2,984 training captions + 40 held-out + "") are computed once and cached.

Assets (committed under assets/, made once on a machine with open-clip-torch; training machines need only
transformers + sentencepiece to read them):
  assets/clip/vocab.json, merges.txt  the REAL CLIP vocabulary (49,408 tokens), rebuilt from open_clip's
      bpe_simple_vocab_16e6.txt.gz exactly as openai/CLIP's SimpleTokenizer builds it: merges = lines
      [1 : 49152-256-2+1]; vocab = 256 byte characters, the same + "</w>", the merges joined, then
      <|startoftext|>, <|endoftext|>.
  assets/t5/spiece.model (+ tokenizer.json, tokenizer_config.json: the same, converted)  a 1,000-piece SentencePiece unigram model (T5's ids: pad 0, eos 1, unk 2, no bos; nmt_nfkc)
      trained single-threaded with a fixed seed on every caption of the world plus the 3,000 most frequent whole
      words of the CLIP vocabulary, so prompts outside the world tokenize into sensible pieces too.

    python text.py --make-assets        # rewrites assets/ (needs open-clip-torch for the BPE file)
"""
import argparse
import gzip
import io
import json
import math
import pathlib
import string

import torch
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

import dataset as ds

ASSETS = pathlib.Path(__file__).resolve().parent / "assets"
T5_LENGTH = 32  # T5 tokens: the SD3 pipeline attends to T5 padding, so training and inference use the same length
T5_PIECES = 1000
T5_EXTRA_IDS = 100  # <extra_id_0..99>, as the real T5 tokenizer has
CLIP_DIM, T5_DIM = 32, 64  # T5 d_model is the MMDiT's joint_attention_dim; CLIP-L + CLIP-G pooled = 32 + 32


def byte_to_unicode():
    """openai/CLIP's bytes_to_unicode: byte -> printable character, in its insertion order (printables first)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b if b in printable else 256 + others.index(b)) for b in printable + others}


def clip_vocab(bpe_gz):
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    chars = list(byte_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(tokens) == 49408 and len(set(tokens)) == len(tokens)
    return {t: i for i, t in enumerate(tokens)}, merges


def make_assets(bpe_gz):
    import sentencepiece
    (ASSETS / "clip").mkdir(parents=True, exist_ok=True)
    (ASSETS / "t5").mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab(bpe_gz)
    (ASSETS / "clip/vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (ASSETS / "clip/merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    # Frequent English words: the whole-word tokens among CLIP's first merges (BPE learns frequent strings first).
    words = [t[:-4] for t in vocab if t.endswith("</w>") and t[:-4].isalpha() and t[:-4].isascii() and len(t) > 5]
    corpus = [c for c in ds.TRAIN_CAPTIONS + ds.HELD_OUT_CAPTIONS] + [" ".join(words[i:i + 8]) for i in range(0, 3000, 8)]
    corpus += [string.digits + " " + string.punctuation]
    model = io.BytesIO()
    sentencepiece.set_random_generator_seed(0)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, model_type="unigram", vocab_size=T5_PIECES,
        hard_vocab_limit=False, normalization_rule_name="nmt_nfkc", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, num_threads=1, required_chars="".join(c for c in string.printable if not c.isspace()),
        minloglevel=2)
    (ASSETS / "t5/spiece.model").write_bytes(model.getvalue())
    # Also the converted fast tokenizer (tokenizer.json), so that every transformers version loads the very same
    # tokenizer instead of converting spiece.model itself.
    T5Tokenizer.from_pretrained(ASSETS / "t5", extra_ids=T5_EXTRA_IDS, model_max_length=512).save_pretrained(ASSETS / "t5")


def load_tokenizers():
    """CLIP-L, CLIP-G and T5 tokenizers from assets/. transformers 5 reads vocab.json/merges.txt only through
    from_pretrained (the constructor ignores vocab_file/merges_file). tokenizer pads with <|endoftext|>,
    tokenizer_2 with "!" (id 0), as in SD3."""
    clip = CLIPTokenizer.from_pretrained(ASSETS / "clip", model_max_length=77, pad_token="<|endoftext|>")
    clip_2 = CLIPTokenizer.from_pretrained(ASSETS / "clip", model_max_length=77, pad_token="!")
    t5 = T5Tokenizer.from_pretrained(ASSETS / "t5")
    assert len(t5) == T5_PIECES + T5_EXTRA_IDS and t5.convert_ids_to_tokens(len(t5) - 1) == "<extra_id_0>"
    assert clip("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]  # CLIP's own ids
    assert clip_2.pad_token_id == 0 and t5.pad_token_id == 0 and t5.eos_token_id == 1
    return clip, clip_2, t5


def seeded_init(model, seed):
    """A fixed random init that depends on nothing but the parameter names and shapes (not on the transformers
    version's own init code): norms 1, biases 0, embeddings N(0, 1), matrices N(0, 1/fan_in) (unit gain).
    Values are rounded to fp16 so the fp16 export computes the very embeddings the MMDiT was trained on."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.ndim == 1:
                p.fill_(0.0 if name.endswith("bias") else 1.0)
            elif "embed" in name or "shared" in name or "relative_attention_bias" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            p.copy_(p.half().float())
            p.requires_grad_(False)
    return model.eval()


def make_text_encoders(clip, clip_2, t5):
    common = dict(vocab_size=len(clip), hidden_size=CLIP_DIM, intermediate_size=37, projection_dim=CLIP_DIM,
                  num_attention_heads=4, num_hidden_layers=5, max_position_embeddings=77, layer_norm_eps=1e-5,
                  bos_token_id=clip.bos_token_id, eos_token_id=clip.eos_token_id)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(**common, hidden_act="quick_gelu",
                                                              pad_token_id=clip.pad_token_id))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**common, hidden_act="gelu",
                                                                pad_token_id=clip_2.pad_token_id))
    text_encoder_3 = T5EncoderModel(T5Config(
        vocab_size=(len(t5) + 127) // 128 * 128, d_model=T5_DIM, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", dropout_rate=0.0, pad_token_id=t5.pad_token_id,
        eos_token_id=t5.eos_token_id, decoder_start_token_id=0, tie_word_embeddings=False))
    return seeded_init(text_encoder, 1), seeded_init(text_encoder_2, 2), seeded_init(text_encoder_3, 3)


def text_pipeline(components):
    """A StableDiffusion3Pipeline holding only the text side, for its encode_prompt."""
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
    return StableDiffusion3Pipeline(transformer=None, vae=None, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                    **components)


@torch.no_grad()
def encode(pipe, captions, batch=256):
    """diffusers' own SD3 prompt encoding (CLIP penultimate states padded to T5 width, then T5), no guidance."""
    embeds, pooled = [], []
    for i in range(0, len(captions), batch):
        e, _, p, _ = pipe.encode_prompt(prompt=captions[i:i + batch], prompt_2=None, prompt_3=None, device="cpu",
                                        do_classifier_free_guidance=False, max_sequence_length=T5_LENGTH)
        embeds.append(e.float())
        pooled.append(p.float())
    return torch.cat(embeds), torch.cat(pooled)


def build_text(work, log=print):
    """Saves tokenizers + encoders under work/text/ and the cache work/text/cache.pt; returns the cache."""
    out = pathlib.Path(work) / "text"
    if (out / "cache.pt").exists():
        log(f"text: reusing {out / 'cache.pt'}")
        return torch.load(out / "cache.pt")
    clip, clip_2, t5 = load_tokenizers()
    te, te2, te3 = make_text_encoders(clip, clip_2, t5)
    components = dict(tokenizer=clip, tokenizer_2=clip_2, tokenizer_3=t5,
                      text_encoder=te, text_encoder_2=te2, text_encoder_3=te3)
    for name, obj in components.items():
        obj.save_pretrained(out / name)
    captions = [""] + ds.TRAIN_CAPTIONS + ds.HELD_OUT_CAPTIONS  # index 0 = the empty caption (guidance)
    embeds, pooled = encode(text_pipeline(components), captions)
    cache = {"captions": captions, "embeds": embeds, "pooled": pooled, "max_sequence_length": T5_LENGTH}
    torch.save(cache, out / "cache.pt")
    n_params = sum(p.numel() for m in (te, te2, te3) for p in m.parameters())
    log(f"text: {n_params / 1e6:.2f} M params in 3 frozen encoders; T5 vocab {len(t5)} "
        f"(embedding {te3.config.vocab_size}); cached {tuple(embeds.shape)} prompt embeddings, pooled {tuple(pooled.shape)}")
    return cache


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-assets", action="store_true")
    ap.add_argument("--bpe", help="bpe_simple_vocab_16e6.txt.gz (default: the one open_clip ships)")
    args = ap.parse_args()
    if args.make_assets:
        bpe = args.bpe
        if bpe is None:
            import importlib.util  # locate the file without importing open_clip (which needs torchvision)
            spec = importlib.util.find_spec("open_clip")
            bpe = pathlib.Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
        make_assets(bpe)
    clip, clip_2, t5 = load_tokenizers()
    for text in ds.HELD_OUT_CAPTIONS[:2] + ["A photo of an astronaut riding a horse on Mars, 4k!"]:
        print(text, "\n  clip:", clip(text).input_ids, "\n  t5:", t5.convert_ids_to_tokens(t5(text).input_ids))
    print(f"clip vocab {len(clip)}, t5 vocab {len(t5)}")


if __name__ == "__main__":
    main()
