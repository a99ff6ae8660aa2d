#!/usr/bin/env python3
"""Writes the small tokenizer.json fixtures under tests/data/hf_tokenizer/.

    python3 tests/tools/make_hf_tokenizer_fixtures.py

Each is a byte-level BPE file in the Hugging Face `tokenizers` layout whose
base vocabulary gives byte b the id b (written as its character in GPT-2's
byte-level alphabet), then a handful of merges and added tokens. The expected
encodings in tests/unit/test_hf_tokenizer.cpp are derived by hand from these
merge lists (the test shows the steps); nothing here computes an encoding.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "hf_tokenizer")

# GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68
# bytes for U+0100.. in byte order.
PRINTABLE = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
CHAR = {}
extra = 256
for b in range(256):
    if b in PRINTABLE:
        CHAR[b] = chr(b)
    else:
        CHAR[b] = chr(extra)
        extra += 1

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def added(id_, content, special, normalized=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


def byte_level(add_prefix_space, use_regex):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": use_regex}


def tokenizer(merges, extra_vocab, added_tokens, pre_tokenizer, ignore_merges, merges_as_pairs=False, normalizer=None):
    vocab = {CHAR[b]: b for b in range(256)}
    next_id = 256
    for a, b in merges:  # each merge's result is the next id, in merge order
        vocab[a + b] = next_id
        next_id += 1
    for t in extra_vocab:
        vocab[t] = next_id
        next_id += 1
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": byte_level(True, True),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": ignore_merges, "vocab": vocab,
                  "merges": [[a, b] for a, b in merges] if merges_as_pairs else [a + " " + b for a, b in merges]},
    }


def write(name, obj, config=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    if config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
            f.write("\n")


G = CHAR[0x20]  # 'Ġ', the space
N = CHAR[0x0A]  # 'Ċ', the newline

# GPT-2 style: ByteLevel with the GPT-2 pattern, merges as "a b" strings.
# Ids: merges 256..267 in order, "the" 265 is a merge result the rank order
# never reaches; <|endoftext|> 268 (special, EOS), <sep> 269 (not special).
write("gpt2_style", tokenizer(
    merges=[(G, "t"), ("h", "e"), (G + "t", "he"), ("i", "n"), (G, "c"), ("a", "t"), (G + "c", "at"),
            ("e", "r"), ("t", "h"), ("th", "e"), (G, G), ("1", "2")],
    extra_vocab=[],
    added_tokens=[added(268, "<|endoftext|>", True, True), added(269, "<sep>", False)],
    pre_tokenizer=byte_level(False, True), ignore_merges=False))

# Llama 3 style: Split (Llama 3 pattern, Isolated) then ByteLevel without its
# pattern, ignore_merges. Ids: merges 256..265; "hello" 266 is in the vocab
# only; <|begin_of_text|> 300, <|end_of_text|> 301 (EOS); 267..299 unused.
write("llama3_style", tokenizer(
    merges=[(G, "w"), ("o", "r"), (G + "w", "or"), ("l", "d"), (G + "wor", "ld"), ("1", "2"), ("12", "3"),
            (N, N), ("'", "m"), ("'", "M")],
    extra_vocab=["hello"],
    added_tokens=[added(300, "<|begin_of_text|>", True), added(301, "<|end_of_text|>", True)],
    pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
        byte_level(False, False)]},
    ignore_merges=True))

# Qwen 2 style: NFC, Split (single digits) then ByteLevel, merges as [a, b]
# pairs, EOS named by tokenizer_config.json. "你" is E4 BD A0: 'ä' '½' and, since A0
# is not printable, U+0142 'ł'. Ids: merges 256..260; <|endoftext|> 261,
# <|im_start|> 262, <|im_end|> 263 (EOS by the config).
write("qwen2_style", tokenizer(
    merges=[(G, "h"), (G + "h", "i"), ("\u00e4", "\u00bd"), ("\u00e4\u00bd", "\u0142"), ("1", "2")],
    extra_vocab=[],
    added_tokens=[added(261, "<|endoftext|>", True), added(262, "<|im_start|>", True),
                  added(263, "<|im_end|>", True)],
    pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
        byte_level(False, False)]},
    ignore_merges=False, merges_as_pairs=True, normalizer={"type": "NFC"}),
    config={"eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": False, "normalized": False,
                          "rstrip": False, "single_word": False}})
