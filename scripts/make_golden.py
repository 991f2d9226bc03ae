#!/usr/bin/env python3
"""Builds strata's golden data (tests/golden/): small tokenizers and random-weight checkpoints,
with reference outputs from sentencepiece, tokenizers and Hugging Face transformers.

Everything is made here from fixed seeds: the training corpus (stdlib docstrings plus synthetic
multilingual lines), the tokenizers trained on it, tiny models of each supported architecture
saved with save_pretrained, reference token ids/decodes, last-position logits and greedy
continuations computed in float32 on the CPU with eager attention.

    python3 scripts/make_golden.py --out tests/golden [--archive golden.tar.gz]

Needs torch, transformers (v5), tokenizers, sentencepiece, safetensors, numpy.
`--only sp` builds just the corpus and the SentencePiece tokenizer (no transformers needed).
"""

import argparse
import codecs
import contextlib
import hashlib
import importlib
import io
import json
import os
import platform
import random
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
import unicodedata

SEED = 20251122
MIN_GAP = 2e-3          # top1 - top2 logit gap every greedy step must keep
NUM_GREEDY = 32
MAX_MODEL_ATTEMPTS = 25
MIN_MEAN_DISTINCT = 6   # wanted mean number of distinct ids in a prompt's greedy continuation
RESIDUAL_GAIN = 8.0

# Characters that must never appear in the training corpus: the "unseen" test cases rely on it.
UNSEEN_TEXT = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ᚠᛇᚻ 𓀀 Ꮳ ꙮ \ue000"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                   "<|start_header_id|>", "<|end_header_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_ADDED_NON_SPECIAL = ["<tool_call>", "</tool_call>"]

# Chat templates as shipped by the real models (Llama 3, Qwen2, Mistral v0.1), so the server's
# Jinja subset can be tested against transformers' own rendering.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")

CHAT_CONVERSATIONS = [
    ([{"role": "user", "content": "Hello! How are you?"}], True),
    ([{"role": "system", "content": "You are terse."},
      {"role": "user", "content": "  What is 2+2?  "},
      {"role": "assistant", "content": "4."},
      {"role": "user", "content": "And 3+3? Привет 😀"}], True),
    ([{"role": "user", "content": "Write a haiku."},
      {"role": "assistant", "content": "Autumn moonlight—\na worm digs silently\ninto the chestnut."}], False),
]

STDLIB_MODULES = [
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bdb", "binascii", "bisect", "bz2",
    "calendar", "cmd", "code", "codecs", "codeop", "collections", "colorsys", "compileall",
    "concurrent.futures", "configparser", "contextlib", "contextvars", "copy", "copyreg", "csv",
    "ctypes", "dataclasses", "datetime", "decimal", "difflib", "dis", "doctest", "email",
    "email.message", "email.utils", "encodings", "enum", "filecmp", "fileinput", "fnmatch",
    "fractions", "ftplib", "functools", "gc", "getopt", "getpass", "gettext", "glob", "graphlib",
    "gzip", "hashlib", "heapq", "hmac", "html", "html.parser", "http", "http.client",
    "http.cookies", "http.server", "imaplib", "importlib", "inspect", "io", "ipaddress",
    "itertools", "json", "keyword", "linecache", "locale", "logging", "logging.handlers", "lzma",
    "mailbox", "mimetypes", "mmap", "modulefinder", "multiprocessing", "netrc", "numbers",
    "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools", "pkgutil",
    "platform", "plistlib", "poplib", "pprint", "profile", "pstats", "py_compile", "pyclbr",
    "pydoc", "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "runpy", "sched",
    "secrets", "selectors", "shelve", "shlex", "shutil", "signal", "site", "smtplib", "socket",
    "socketserver", "sqlite3", "ssl", "stat", "statistics", "string", "stringprep", "struct",
    "subprocess", "symtable", "sysconfig", "tabnanny", "tarfile", "tempfile", "textwrap",
    "threading", "timeit", "token", "tokenize", "tomllib", "trace", "traceback", "tracemalloc",
    "types", "typing", "unittest", "unittest.mock", "urllib.parse", "urllib.request", "uuid",
    "warnings", "wave", "weakref", "webbrowser", "wsgiref", "xml.dom.minidom",
    "xml.etree.ElementTree", "xml.sax", "zipapp", "zipfile", "zipimport", "zoneinfo",
]

WORDS = {
    "zh": ["你好", "世界", "今天", "天气", "很好", "我们", "学习", "中文", "电脑", "程序", "语言", "模型",
           "数据", "时间", "问题", "朋友", "北京", "上海", "的", "了", "是", "在", "和", "有", "人"],
    "ja": ["こんにちは", "世界", "ありがとう", "日本語", "カタカナ", "ひらがな", "東京", "猫", "犬",
           "です", "ます", "コンピュータ", "テスト", "の", "は", "を", "に"],
    "ko": ["안녕하세요", "세계", "감사합니다", "한국어", "컴퓨터", "사랑", "오늘", "날씨", "좋아요"],
    "ru": ["привет", "мир", "съешь", "же", "ещё", "этих", "мягких", "французских", "булок",
           "да", "выпей", "чаю", "Москва", "компьютер", "язык", "модель", "данные", "время"],
    "el": ["Γειά", "σου", "Κόσμε", "καλημέρα", "ευχαριστώ", "θάλασσα", "ήλιος", "λόγος", "αλφάβητο"],
    "fr": ["naïve", "café", "façade", "élève", "où", "été", "garçon", "crème", "brûlée", "château",
           "Noël", "déjà", "voilà", "à", "être"],
    "de": ["Straße", "Grüße", "Müller", "Äpfel", "Öl", "über", "schön", "Mädchen", "Fußgänger"],
    "es": ["señor", "niño", "mañana", "corazón", "canción", "¿qué", "¡hola!", "pingüino", "año"],
    "nordic": ["Ærøskøbing", "smørrebrød", "Åland", "fjord", "købe", "ångström"],
    "en": ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "token", "model",
           "server", "request", "batch", "cache", "block", "sequence", "prefill", "decode",
           "attention", "kernel", "tensor", "float", "integer", "string", "I'll", "don't",
           "won't", "it's", "they're", "we've", "she'd", "you'll", "DON'T", "CAN'T", "Hello"],
}
EMOJI = ["😀", "😃", "🎉", "🍕", "❤️", "👍", "👍🏽", "👋🏿", "🙏🏻", "👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈",
         "🇺🇸", "🇯🇵", "✨", "🔥", "🚀", "☕"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302", "A\u030a", "c\u0327", "u\u0308"]
CODE_SNIPPETS = [
    "def main(argv):\n    for i, arg in enumerate(argv):\n        print(i, arg)\n    return 0\n",
    "if __name__ == '__main__':\n\tsys.exit(main(sys.argv[1:]))\n",
    "class Cache:\n    def __init__(self, size: int = 16) -> None:\n        self.blocks = [None] * size\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "    x = {'key': [1, 2, 3], \"other\": (4.5, -6e-7)}\n",
    "\t\treturn x if x is not None else default  # fallback\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }\n",
]


def log(*args):
    print(*args, flush=True)


# ----------------------------------------------------------------------------------------------
# Corpus

def _stdlib_paragraphs():
    paragraphs = []
    with contextlib.redirect_stdout(io.StringIO()):
        import this  # noqa: F401  (prints the Zen of Python on import)
    paragraphs.append(codecs.decode(this.s, "rot13"))
    for name in STDLIB_MODULES:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                module = importlib.import_module(name)
        except Exception:
            continue
        doc = getattr(module, "__doc__", None)
        if doc and doc.strip():
            paragraphs.append(doc.strip())
        # A few public callables' docstrings for more ordinary English and code-ish text.
        taken = 0
        for attr in sorted(dir(module)):
            if attr.startswith("_") or taken >= 6:
                continue
            obj = getattr(module, attr, None)
            if not callable(obj) or getattr(obj, "__module__", None) != module.__name__:
                continue
            d = getattr(obj, "__doc__", None)
            if d and len(d.strip()) > 40:
                paragraphs.append(d.strip())
                taken += 1
    return paragraphs


def _synthetic_lines(rng, count):
    lines = []
    langs = sorted(WORDS)
    for i in range(count):
        kind = rng.randrange(10)
        if kind <= 4:  # words of one or two languages, sometimes with emoji / numbers
            la, lb = rng.choice(langs), rng.choice(langs)
            sep = "" if la in ("zh", "ja") and rng.random() < 0.5 else " "
            words = [rng.choice(WORDS[la if rng.random() < 0.7 else lb]) for _ in range(rng.randint(3, 14))]
            line = sep.join(words)
            if rng.random() < 0.4:
                line += " " + "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.3:
                line += " " + str(rng.randint(0, 10 ** rng.randint(1, 9)))
            if rng.random() < 0.3:
                line = line[0].upper() + line[1:] + rng.choice([".", "!", "?", "…", "。", "！"])
        elif kind == 5:  # combining marks and their NFC forms
            parts = []
            for _ in range(rng.randint(2, 6)):
                c = rng.choice(COMBINING)
                base = rng.choice(["caf", "na", "resum", "pi", "fa", "ma"]) + c
                parts.append(base if rng.random() < 0.5 else unicodedata.normalize("NFC", base))
            line = " ".join(parts)
        elif kind == 6:  # numbers, dates, money, versions
            line = " ".join(rng.choice([
                str(rng.randint(0, 99999999)), f"{rng.random() * 1000:.3f}", f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1990, 2030)}",
                f"${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}", f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
                f"{rng.randint(-50, 50)}°C", f"{rng.randint(1, 100)}%", f"0x{rng.randint(0, 2**32):08x}", "3.14159", "1e-6"])
                for _ in range(rng.randint(2, 8)))
        elif kind == 7:  # code with tabs and indentation
            line = rng.choice(CODE_SNIPPETS).rstrip("\n")
        elif kind == 8:  # whitespace runs
            ws = rng.choice(["  ", "   ", "    ", "\t", "\t\t", " \t ", "        "])
            words = [rng.choice(WORDS["en"]) for _ in range(rng.randint(2, 6))]
            line = ws.join(words) + rng.choice(["", " ", "   ", "\t"])
            if rng.random() < 0.5:
                line = rng.choice(["  ", "    ", "\t"]) + line
        else:  # mixed everything
            line = " ".join([rng.choice(WORDS[rng.choice(langs)]), rng.choice(EMOJI), str(rng.randint(0, 999)),
                             rng.choice(WORDS["en"]), rng.choice(COMBINING), rng.choice(WORDS["en"]).upper()])
        lines.append(line)
    return lines


def build_corpus():
    """Returns the corpus as a list of paragraphs (each may hold newlines)."""
    rng = random.Random(SEED)
    paragraphs = _stdlib_paragraphs()
    lines = _synthetic_lines(rng, 3000)
    # Group synthetic lines into paragraphs with varied newline runs.
    i = 0
    while i < len(lines):
        n = rng.randint(1, 6)
        joiner = rng.choice(["\n", "\n", "\n\n", "\n\n\n", "\r\n"])
        paragraphs.append(joiner.join(lines[i:i + n]))
        i += n
    rng.shuffle(paragraphs)
    for ch in UNSEEN_TEXT.replace(" ", ""):
        for p in paragraphs:
            assert ch not in p, f"unseen test character {ch!r} occurs in the corpus"
    return paragraphs


# ----------------------------------------------------------------------------------------------
# Test cases

LONG_PARAGRAPH = (
    "Strata serves large language models. It batches requests continuously, keeps a paged KV cache, "
    "and streams tokens back over HTTP or gRPC. Le café coûte 3,50 € — naïve façade! "
    "Привет, мир: съешь же ещё этих мягких французских булок. 你好，世界！今天天气很好。"
    "こんにちは、カタカナ。 안녕하세요 👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 e\u0301 vs é. Numbers: 1234567, 3.14159, 0x1F. "
    "\n\n\tdef f(x):\n\t\treturn x * 2  # doubled\n\nThe end.   ")


def common_cases():
    return [
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "I'll be there, won't you? DON'T PANIC. She's, we've, they'd, you're, I'M",
        "1234567",
        "3.14159 and 2,718,281 and 007 and 12345678901234567890",
        "abc123def4567890ghi",
        "你好，世界！今天天气很好。",
        "こんにちは世界、カタカナとひらがな",
        "안녕하세요 세계",
        "Привет, мир! Съешь же ещё этих мягких французских булок.",
        "Γειά σου Κόσμε",
        "naïve café, façade, Ærøskøbing, straße, señor, ångström",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "สวัสดีชาวโลก",
        "I ❤️ 🍕! 😀😃🎉",
        "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩‍💻 coder",
        "👍🏽 👋🏿 🙏🏻 🇺🇸🇯🇵",
        "cafe\u0301",
        "caf\u00e9",
        "A\u030a ångstro\u0308m Å \u212b",
        "    four leading spaces",
        "trailing spaces   ",
        "a  b   c    d     e",
        "line1\nline2\n\nline4\n\n\n",
        "Hello\r\nWindows\r\nline endings\r\n",
        "\tindented\ttabs\t\t",
        "def f(x):\n    return x * 2\n\nif __name__ == '__main__':\n\tprint(f(21))\n",
        "",
        " ",
        "\n",
        "   \n  \t ",
        " " * 17,
        "a" * 64,
        "<s>hello</s> [INST] literal markers [/INST]",
        UNSEEN_TEXT,
        "zero\u200bwidth\u200djoiner\ufeffbom",
        "control\x01chars\x1f\x7fhere",
        "▁already ▁▁has metaspace▁chars",
        "Ġ and Ċ byte-level lookalikes",
        "https://example.com/path?q=1&x=y#frag user@example.org",
        "!!!??? ... --- *** ((( ))) {{ }}",
        "ALL CAPS SHOUTING and lowercase whispering",
        LONG_PARAGRAPH,
    ]


SPECIAL_CASES = {
    "bpe_llama3": [
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>",
        "text <|eot_id|> more<|end_of_text|>",
    ],
    "bpe_qwen2": [
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><|endoftext|>",
        "a<|im_end|>b <tool_call> c",
    ],
    "bpe_sp_style": [
        "<s>[INST] hi [/INST] hello</s>",
        "x<unk>y</s>",
    ],
}


def cases_for(name):
    return common_cases() + SPECIAL_CASES.get(name, [])


# ----------------------------------------------------------------------------------------------
# JSON helpers

def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2, default=str)
        f.write("\n")


def write_json_rows(path, obj, row_key):
    """Pretty top level, one compact line per element of obj[row_key] (keeps ids/logits small)."""
    head = {k: v for k, v in obj.items() if k != row_key}
    parts = ["{"]
    for k, v in head.items():
        parts.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':'))},")
    rows = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in obj[row_key]]
    parts.append(f"  {json.dumps(row_key)}: [")
    parts.append(",\n".join("    " + r for r in rows))
    parts.append("  ]")
    parts.append("}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    json.loads(open(path, encoding="utf-8").read())  # self-check


def round7(values):
    return [float(f"{v:.7g}") for v in values]


# ----------------------------------------------------------------------------------------------
# SentencePiece (sp_llama)

def train_sentencepiece(paragraphs, out_dir, work_dir):
    import sentencepiece as spm
    corpus_path = os.path.join(work_dir, "sp_corpus.txt")
    with open(corpus_path, "w", encoding="utf-8") as f:
        for p in paragraphs:
            for line in p.replace("\r\n", "\n").split("\n"):
                if line.strip():
                    f.write(line[:2000] + "\n")
    prefix = os.path.join(work_dir, "sp_llama")
    # Llama 2's trainer settings, scaled down.
    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=prefix, model_type="bpe", vocab_size=1000,
        byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", add_dummy_prefix=True,
        character_coverage=0.9995, max_sentencepiece_length=16, num_threads=1,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
        input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(prefix + ".model", os.path.join(out_dir, "tokenizer.model"))
    write_json(os.path.join(out_dir, "tokenizer_config.json"), {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "model_max_length": 4096,
        "tokenizer_class": "LlamaTokenizer",
    })
    return spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))


def sp_expected(sp, cases):
    out = {"kind": "sentencepiece", "vocab_size": sp.get_piece_size(), "bos_id": sp.bos_id(),
           "eos_id": sp.eos_id(), "cases": []}
    for text in cases:
        plain = sp.encode(text)
        ids = [sp.bos_id()] + plain
        decoded = sp.decode(plain)
        out["cases"].append({"text": text, "ids": ids, "ids_plain": plain, "decoded": decoded,
                             "decoded_skip": sp.decode(ids), "roundtrip": decoded == text})
    return out


# ----------------------------------------------------------------------------------------------
# Byte-level BPE (bpe_llama3, bpe_qwen2) and the converted SentencePiece model (bpe_sp_style)

def train_bytelevel_bpe(paragraphs, pattern, nfc, vocab_size, specials, added_non_special, post):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(paragraphs, trainer=trainer)
    # Real Llama 3 / Qwen2 tokenizer.json files set ignore_merges; set it through the serialized form.
    d = json.loads(tok.to_str())
    d["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(d, ensure_ascii=False))
    # Special and added tokens go after the trained vocabulary, as in the real models.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if added_non_special:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in added_non_special])
    if post == "bos":
        bos = specials[0]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, tok.token_to_id(bos))])
    elif post == "bytelevel":
        try:  # the flags Qwen2's tokenizer.json carries
            tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
            tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
        except TypeError:
            tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def save_hf_fast(tok, out_dir, chat_template=None, **special):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                 model_max_length=4096, **special)
    if chat_template:
        hf.chat_template = chat_template
    os.makedirs(out_dir, exist_ok=True)
    hf.save_pretrained(out_dir)


def sp_merges(sp):
    """vocab and merges of a SentencePiece BPE model, ordered the way transformers' extractor does."""
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_byte(pid) or sp.is_unknown(pid):
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                merges.append((pid, vocab[left], vocab[right], left, right))
    merges.sort()
    return vocab, [[m[3], m[4]] for m in merges]


def build_sp_style_by_hand(sp):
    """Fallback when transformers cannot convert tokenizer.model: the Llama 2 / Mistral
    tokenizer.json layout built directly with the tokenizers library."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    vocab, merges = sp_merges(sp)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in merges], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
    return tok


def convert_sp_style(sp_dir, out_dir, sp, notes):
    os.makedirs(out_dir, exist_ok=True)
    try:
        from transformers import LlamaTokenizer
        hf = LlamaTokenizer.from_pretrained(sp_dir)
        hf.chat_template = MISTRAL_CHAT_TEMPLATE
        hf.save_pretrained(out_dir)
        notes["bpe_sp_style_source"] = "transformers LlamaTokenizer.from_pretrained(tokenizer.model)"
    except Exception as e:  # noqa: BLE001
        notes["bpe_sp_style_conversion_error"] = repr(e)
        log("bpe_sp_style: transformers conversion failed, building by hand:", repr(e))
        shutil.rmtree(out_dir)
        save_hf_fast(build_sp_style_by_hand(sp), out_dir, chat_template=MISTRAL_CHAT_TEMPLATE,
                     bos_token="<s>", eos_token="</s>", unk_token="<unk>", add_bos_token=True,
                     add_eos_token=False)
        notes["bpe_sp_style_source"] = "built by hand with the tokenizers library"
    # The folder must exercise the tokenizer.json path: drop any copied SentencePiece model.
    for extra in ("tokenizer.model",):
        p = os.path.join(out_dir, extra)
        if os.path.exists(p):
            os.remove(p)
            notes["bpe_sp_style_removed"] = extra
    if not os.path.exists(os.path.join(out_dir, "tokenizer.json")):
        raise RuntimeError("bpe_sp_style: save_pretrained wrote no tokenizer.json")


def pipeline_summary(tokenizer_json_path):
    d = json.load(open(tokenizer_json_path, encoding="utf-8"))

    def describe(node):
        if node is None:
            return None
        t = node.get("type")
        for key in ("normalizers", "pretokenizers", "decoders", "processors"):
            if key in node:
                return f"{t}[{', '.join(describe(n) for n in node[key])}]"
        extra = {k: v for k, v in node.items() if k not in ("type", "pattern", "content", "special_tokens",
                                                              "pair", "precompiled_charsmap")}
        if "pattern" in node:
            extra["pattern"] = node["pattern"]
        if "content" in node:
            extra["content"] = node["content"]
        return f"{t}({json.dumps(extra, ensure_ascii=False)})" if extra else t

    m = d.get("model", {})
    return {
        "normalizer": describe(d.get("normalizer")),
        "pre_tokenizer": describe(d.get("pre_tokenizer")),
        "decoder": describe(d.get("decoder")),
        "post_processor": describe(d.get("post_processor")),
        "model": {k: m.get(k) for k in ("type", "byte_fallback", "fuse_unk", "ignore_merges", "unk_token")},
        "added_tokens": [(a["id"], a["content"], a["special"]) for a in d.get("added_tokens", [])],
    }


def hf_expected(folder, cases, tok_name, notes):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(folder)
    raw = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    out = {"kind": "bpe", "vocab_size": len(hf), "bos_id": hf.bos_token_id, "eos_id": hf.eos_token_id,
           "cases": []}
    mismatches = []
    for text in cases:
        ids = hf(text)["input_ids"]
        plain = hf(text, add_special_tokens=False)["input_ids"]
        decoded = hf.decode(plain, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        decoded_skip = hf.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        out["cases"].append({"text": text, "ids": ids, "ids_plain": plain, "decoded": decoded,
                             "decoded_skip": decoded_skip, "roundtrip": decoded == text})
        # The C++ side implements tokenizer.json itself: it must agree with transformers.
        r_ids = raw.encode(text, add_special_tokens=True).ids
        r_plain = raw.encode(text, add_special_tokens=False).ids
        r_dec = raw.decode(plain, skip_special_tokens=False)
        if r_ids != ids or r_plain != plain or r_dec != decoded:
            mismatches.append({"text": text, "hf_ids": ids, "raw_ids": r_ids, "hf_plain": plain,
                               "raw_plain": r_plain, "hf_decoded": decoded, "raw_decoded": r_dec})
    notes.setdefault("hf_vs_tokenizer_json_mismatches", {})[tok_name] = mismatches
    if mismatches:
        log(f"WARNING {tok_name}: {len(mismatches)} cases where AutoTokenizer != tokenizer.json; first:",
            json.dumps(mismatches[0], ensure_ascii=False)[:600])
    if getattr(hf, "chat_template", None):
        chats = []
        for messages, add_gen in CHAT_CONVERSATIONS:
            try:
                rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_gen)
            except Exception as e:  # noqa: BLE001  (e.g. Mistral's template rejects a system role)
                chats.append({"messages": messages, "add_generation_prompt": add_gen, "error": str(e)})
                continue
            chats.append({"messages": messages, "add_generation_prompt": add_gen, "rendered": rendered,
                          "ids": hf(rendered, add_special_tokens=False)["input_ids"]})
        out["chat_cases"] = chats
    return out


# ----------------------------------------------------------------------------------------------
# Models

MODEL_SPECS = [
    dict(name="llama_sp_tied", arch="LlamaForCausalLM", tokenizer="sp_llama", dtype="float32", vocab=1031,
         cfg=dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, tie_word_embeddings=True, rms_norm_eps=1e-5,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    dict(name="llama3_bpe", arch="LlamaForCausalLM", tokenizer="bpe_llama3", dtype="bfloat16", vocab=1537,
         classic_config=True,
         cfg=dict(hidden_size=128, intermediate_size=320, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=2, head_dim=32, tie_word_embeddings=False, rms_norm_eps=1e-5,
                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 64})),
    dict(name="mistral_sp_style", arch="MistralForCausalLM", tokenizer="bpe_sp_style", dtype="float16",
         vocab=1033,
         cfg=dict(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=32, sliding_window=None, tie_word_embeddings=False,
                  rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen2_bpe", arch="Qwen2ForCausalLM", tokenizer="bpe_qwen2", dtype="float32", vocab=1283,
         cfg=dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, tie_word_embeddings=True, rms_norm_eps=1e-6,
                  use_sliding_window=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    dict(name="qwen3_bpe", arch="Qwen3ForCausalLM", tokenizer="bpe_qwen2", dtype="float32", vocab=1291,
         shard="200KB",
         cfg=dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32, tie_word_embeddings=False, rms_norm_eps=1e-6,
                  use_sliding_window=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
]

PROMPT_SHORT = "Hello world, this is"
PROMPT_MID = "The quick brown fox jumps over the lazy dog while the server batches requests."
PROMPT_MULTI = ("Привет, мир! 你好，世界。 naïve café 😀 👍🏽 — numbers 1234567 and 3.14; "
                "def f(x):\n\treturn x\n")
PROMPT_LONG = (
    "Beautiful is better than ugly. Explicit is better than implicit. Simple is better than complex. "
    "Complex is better than complicated. Flat is better than nested. Sparse is better than dense. "
    "Readability counts. Special cases aren't special enough to break the rules. Although practicality "
    "beats purity. Errors should never pass silently. Unless explicitly silenced. In the face of "
    "ambiguity, refuse the temptation to guess. There should be one and preferably only one obvious "
    "way to do it. Although that way may not be obvious at first unless you're Dutch.")
PROMPT_FORK = ("so the cache keeps every block that two requests share, and the scheduler decodes the new "
               "tokens of both requests in one batch without copying the common prefix again.")


def _take_words(text, encode, max_tokens):
    words = text.split(" ")
    best = words[0]
    for k in range(1, len(words) + 1):
        candidate = " ".join(words[:k])
        if len(encode(candidate)) <= max_tokens:
            best = candidate
        else:
            break
    return best


def make_prompts(encode):
    """Five prompts from ~3 to ~70 tokens; the last two share their first >= 48 tokens."""
    texts = [_take_words(PROMPT_SHORT, encode, 4), _take_words(PROMPT_MID, encode, 14),
             _take_words(PROMPT_MULTI, encode, 34)]
    long_text = _take_words(PROMPT_LONG, encode, 70)
    long_ids = encode(long_text)
    fork = None
    for cut in range(52, 62):
        prefix = _take_words(PROMPT_LONG, encode, cut)
        candidate = _take_words(prefix + " " + PROMPT_FORK, encode, len(encode(prefix)) + 10)
        ids = encode(candidate)
        common = 0
        while common < min(len(ids), len(long_ids)) and ids[common] == long_ids[common]:
            common += 1
        if common >= 48 and len(ids) >= 50 and candidate != long_text:
            fork = candidate
            break
    if fork is None:
        raise RuntimeError("could not build two prompts sharing 48 leading tokens")
    texts += [long_text, fork]
    return texts


def _init_weights(model, rng_seed, logit_scale):
    import torch
    g = torch.Generator().manual_seed(rng_seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:       # RMSNorm weights, q_norm/k_norm: around 1.0 +- 0.2
                p.copy_(1.0 + 0.2 * (2 * torch.rand(p.shape, generator=g) - 1))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif "lm_head" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (logit_scale / p.shape[1] ** 0.5))
            elif "o_proj" in name or "down_proj" in name:
                # Layer outputs well above the embedding in the residual stream: otherwise a tied
                # lm_head mostly sees the current token's own embedding and greedy repeats it forever.
                p.copy_(torch.randn(p.shape, generator=g) * (RESIDUAL_GAIN / p.shape[1] ** 0.5))
            else:                    # other linear weights [out, in]
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)


def _build_model(spec, tok_info, seed):
    import torch
    import transformers
    arch = spec["arch"]
    cfg_cls = getattr(transformers, arch.replace("ForCausalLM", "Config"))
    kwargs = dict(spec["cfg"])
    kwargs.update(vocab_size=spec["vocab"], max_position_embeddings=256, bos_token_id=tok_info["bos_id"],
                  eos_token_id=tok_info["eos_id"], pad_token_id=tok_info.get("pad_id"), attention_dropout=0.0)
    cfg = cfg_cls(**kwargs)
    try:
        model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager",
                                                              dtype=torch.float32)
    except Exception as e:  # noqa: BLE001
        log(f"  from_config(attn_implementation=, dtype=) failed ({e!r}); constructing {arch} directly")
        model = getattr(transformers, arch)(cfg)
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
        else:
            model.config._attn_implementation = "eager"
    model = model.float().eval()
    if kwargs["tie_word_embeddings"]:
        model.lm_head.weight = model.model.embed_tokens.weight
    else:
        assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    _init_weights(model, seed, logit_scale=4.0)
    if spec["dtype"] != "float32":  # the reference uses the weights as stored, upcast to float32
        dt = getattr(torch, spec["dtype"])
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(dt).to(torch.float32))
    return model


def _run_prompts(model, prompt_ids):
    import torch
    results = []
    with torch.no_grad():
        for ids in prompt_ids:
            seq = list(ids)
            greedy, gaps, last_logits = [], [], None
            for step in range(NUM_GREEDY):
                logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].float()
                if step == 0:
                    last_logits = logits.clone()
                top = torch.topk(logits, 2)
                gaps.append(float(top.values[0] - top.values[1]))
                nxt = int(torch.argmax(logits))
                greedy.append(nxt)
                seq.append(nxt)
            results.append({"last_logits": last_logits, "greedy": greedy, "min_gap": min(gaps)})
    return results


def _rewrite_classic_llama3_config(model_dir, spec):
    path = os.path.join(model_dir, "config.json")
    cfg = json.load(open(path, encoding="utf-8"))
    rp = dict(spec["cfg"]["rope_parameters"])
    cfg.pop("rope_parameters", None)
    cfg["rope_theta"] = rp.pop("rope_theta")
    cfg["rope_scaling"] = rp
    if "dtype" in cfg and "torch_dtype" not in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    write_json(path, dict(sorted(cfg.items())))


def _reload_logits(model_dir, prompt_ids):
    import torch
    from transformers import AutoModelForCausalLM
    try:
        m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    except TypeError as e:
        log(f"  from_pretrained(dtype=) failed ({e!r}); trying torch_dtype=")
        m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    m.eval()
    out = []
    with torch.no_grad():
        for ids in prompt_ids:
            out.append(m(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].float())
    return m, out


def build_model(spec, golden_dir, tok_infos, notes):
    import torch
    from transformers import AutoTokenizer, GenerationConfig
    name = spec["name"]
    tok_info = tok_infos[spec["tokenizer"]]
    assert spec["vocab"] >= tok_info["vocab_size"], (name, spec["vocab"], tok_info["vocab_size"])
    model_dir = os.path.join(golden_dir, "models", name)
    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    # Tokenizer files first, so AutoTokenizer on the model folder is what a user would get.
    tok_dir = os.path.join(golden_dir, "tokenizers", spec["tokenizer"])
    for fname in sorted(os.listdir(tok_dir)):
        if fname != "expected.json":
            shutil.copy(os.path.join(tok_dir, fname), os.path.join(model_dir, fname))

    encode = tok_info["encode"]
    texts = make_prompts(encode)
    prompt_ids = [encode(t) for t in texts]
    model_notes = {"prompt_lengths": [len(p) for p in prompt_ids]}

    # Re-seed until every greedy step has a clear argmax (so float noise in the C++ backends
    # cannot flip it) and, if possible, the continuations are not one token repeated.
    chosen, fallback = None, None
    for attempt in range(MAX_MODEL_ATTEMPTS):
        seed = SEED + 1000 * (MODEL_SPECS.index(spec) + 1) + attempt
        torch.manual_seed(seed)
        model = _build_model(spec, tok_info, seed)
        results = _run_prompts(model, prompt_ids)
        gap = min(r["min_gap"] for r in results)
        distinct = sum(len(set(r["greedy"])) for r in results) / len(results)
        if gap < MIN_GAP:
            log(f"  {name}: seed {seed} min gap {gap:.2e} < {MIN_GAP}, retrying")
            continue
        if distinct >= MIN_MEAN_DISTINCT:
            chosen = (seed, model, results, attempt)
            break
        log(f"  {name}: seed {seed} mean distinct greedy ids {distinct:.1f} < {MIN_MEAN_DISTINCT}, retrying")
        if fallback is None:
            fallback = (seed, model, results, attempt)
    if chosen is None:
        chosen = fallback
        model_notes["variety_not_reached"] = True
    if chosen is None:
        raise RuntimeError(f"{name}: no seed gave a top1-top2 gap >= {MIN_GAP}")
    seed, model, results, attempt = chosen
    model_notes.update(seed=seed, attempts=attempt + 1,
                       distinct_greedy_ids=[len(set(r["greedy"])) for r in results],
                       attn_implementation=getattr(model.config, "_attn_implementation", None))

    model.generation_config = GenerationConfig(bos_token_id=tok_info["bos_id"], eos_token_id=tok_info["eos_id"],
                                               pad_token_id=tok_info.get("pad_id"))
    save_kwargs = {}
    if spec.get("shard"):
        save_kwargs["max_shard_size"] = spec["shard"]
    to_save = model if spec["dtype"] == "float32" else model.to(getattr(torch, spec["dtype"]))
    to_save.save_pretrained(model_dir, **save_kwargs)
    if spec.get("classic_config"):
        _rewrite_classic_llama3_config(model_dir, spec)

    # Loading the folder back must give the very logits recorded.
    reloaded, relogits = _reload_logits(model_dir, prompt_ids)
    diff = max(float((a - r["last_logits"]).abs().max()) for a, r in zip(relogits, results))
    model_notes["reload_max_abs_diff"] = diff
    model_notes["reloaded_config_rope"] = getattr(reloaded.config, "rope_parameters", None)
    if diff > 1e-5:
        raise RuntimeError(f"{name}: reloaded model differs from the reference by {diff}")
    if spec.get("shard") and not os.path.exists(os.path.join(model_dir, "model.safetensors.index.json")):
        raise RuntimeError(f"{name}: expected a sharded checkpoint")

    # The model folder's own AutoTokenizer should tokenize the prompts the same way.
    if tok_info["kind"] == "bpe":
        hf = AutoTokenizer.from_pretrained(model_dir)
        model_notes["autotokenizer_matches"] = all(hf(t)["input_ids"] == p for t, p in zip(texts, prompt_ids))
        model_notes["autotokenizer_class"] = type(hf).__name__

    golden = {
        "architecture": spec["arch"],
        "dtype": spec["dtype"],
        "tokenizer": spec["tokenizer"],
        "seed": seed,
        "prompts": [{"text": t, "ids": p, "last_logits": round7(r["last_logits"].tolist()),
                     "greedy": r["greedy"], "min_gap": float(f"{r['min_gap']:.6g}")}
                    for t, p, r in zip(texts, prompt_ids, results)],
    }
    write_json_rows(os.path.join(model_dir, "golden.json"), golden, "prompts")
    notes.setdefault("models", {})[name] = model_notes
    return {"model": name, "vocab": spec["vocab"], "prompts": len(texts),
            "lengths": model_notes["prompt_lengths"], "min_gap": min(r["min_gap"] for r in results),
            "distinct": model_notes["distinct_greedy_ids"], "seed": seed}


# ----------------------------------------------------------------------------------------------
# Driver

README = """# Golden data

Made by `scripts/make_golden.py`; do not edit by hand. Regenerate with

    python3 scripts/make_golden.py --out tests/golden

(it needs torch, transformers 5, tokenizers, sentencepiece, safetensors; `manifest.json` records
the versions, seeds, checks and the sha256 of every file of the run that made this folder).

Everything is built from fixed seeds: a corpus (Python stdlib docstrings, the Zen of Python,
synthetic multilingual lines with emoji, combining marks, numbers, code and whitespace runs),
tokenizers trained on it, and tiny random-weight checkpoints saved with `save_pretrained`.

## tokenizers/<name>/

| name | what | reference |
|---|---|---|
| sp_llama | SentencePiece BPE (Llama 2 trainer settings: byte_fallback, split_digits, identity normalization, dummy prefix), tokenizer.model only | sentencepiece: ids = [bos] + encode(text), decode |
| bpe_llama3 | byte-level BPE, Llama 3 regex, ignore_merges, BOS added by a TemplateProcessing post-processor | transformers AutoTokenizer |
| bpe_qwen2 | byte-level BPE, NFC, Qwen2 regex, no BOS, special tokens plus the non-special added tokens `<tool_call>`, `</tool_call>` | transformers AutoTokenizer |
| bpe_sp_style | sp_llama's model converted by transformers into tokenizer.json (BPE with byte_fallback; see manifest.json for its normalizer / pre_tokenizer / decoder) | transformers AutoTokenizer |

`expected.json`: `{kind, vocab_size (len(tokenizer), added tokens included), bos_id, eos_id,
cases: [{text, ids (with special tokens), ids_plain (without), decoded (decode(ids_plain),
special tokens kept, no clean-up), decoded_skip (decode(ids) skipping special tokens), roundtrip}]}`;
tokenizers with a chat template also carry `chat_cases: [{messages, add_generation_prompt,
rendered, ids}]` rendered by transformers' `apply_chat_template`.

## models/<name>/

| name | class | tokenizer | notes |
|---|---|---|---|
| llama_sp_tied | LlamaForCausalLM | sp_llama | GQA 4/2, head_dim 16, tied embeddings, float32 |
| llama3_bpe | LlamaForCausalLM | bpe_llama3 | GQA 8/2, head_dim 32 (!= hidden/heads), llama3 rope scaling, classic `rope_theta` + `rope_scaling` config.json, bfloat16 weights |
| mistral_sp_style | MistralForCausalLM | bpe_sp_style | GQA 4/1, head_dim 32, no sliding window, float16 weights |
| qwen2_bpe | Qwen2ForCausalLM | bpe_qwen2 | q/k/v biases, GQA 4/2, tied, 3 layers, float32 |
| qwen3_bpe | Qwen3ForCausalLM | bpe_qwen2 | q_norm/k_norm, head_dim 32 with hidden 64, untied, sharded safetensors, float32 |

All but llama3_bpe keep transformers 5's `rope_parameters` config style. Model vocabularies are
larger than their tokenizers' (odd sizes); greedy ids may fall in the unused tail.

Weights are re-drawn from the seed (larger than transformers' defaults so logits spread out):
linear weights N(0, 1/fan_in), o_proj and down_proj 8x that (layer outputs dominate the residual
stream, so greedy continuations vary), embeddings N(0, 1), an untied lm_head N(0, 16/hidden),
every norm weight (q_norm/k_norm included) U(0.8, 1.2), biases N(0, 0.04).

`golden.json`: `{architecture, dtype, tokenizer, seed, prompts: [{text, ids, last_logits (logits at
the last prompt position, float32, 7 significant digits), greedy (32 argmax ids from full
re-forwards, no EOS stop), min_gap (smallest top1 - top2 logit gap over those 32 steps; always
>= 2e-3)}]}`. References are computed on the CPU in float32 with eager attention; bfloat16 and
float16 checkpoints are referenced with their stored weights upcast to float32. The last two
prompts share at least their first 48 token ids (prefix-cache tests).
"""


def file_manifest(root):
    files = {}
    for dirpath, _, filenames in sorted(os.walk(root)):
        for fname in sorted(filenames):
            path = os.path.join(dirpath, fname)
            rel = os.path.relpath(path, root)
            if rel == "manifest.json":
                continue
            data = open(path, "rb").read()
            files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return files


def versions():
    out = {"python": platform.python_version()}
    for mod in ("torch", "transformers", "tokenizers", "sentencepiece", "safetensors", "numpy"):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except Exception:  # noqa: BLE001
            out[mod] = None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/golden", help="output folder (replaced)")
    ap.add_argument("--archive", help="also write the output folder as this .tar.gz")
    ap.add_argument("--only", choices=["sp", "tokenizers", "all"], default="all")
    args = ap.parse_args()
    t0 = time.time()

    out = os.path.abspath(args.out)
    for sub in ("tokenizers", "models"):
        if os.path.exists(os.path.join(out, sub)):
            shutil.rmtree(os.path.join(out, sub))
    os.makedirs(os.path.join(out, "tokenizers"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="make_golden_")
    notes = {"errors": []}

    try:
        import torch
        torch.set_num_threads(min(16, os.cpu_count() or 1))
        torch.backends.cuda.matmul.allow_tf32 = False
    except Exception:  # noqa: BLE001
        pass

    paragraphs = build_corpus()
    corpus_text = "\n\n".join(paragraphs)
    notes["corpus"] = {"paragraphs": len(paragraphs), "chars": len(corpus_text),
                       "sha256": hashlib.sha256(corpus_text.encode("utf-8")).hexdigest()}
    log(f"corpus: {len(paragraphs)} paragraphs, {len(corpus_text)} chars")

    tok_infos, tok_summary = {}, []

    def record_tokenizer(name, expected):
        write_json_rows(os.path.join(out, "tokenizers", name, "expected.json"), expected, "cases")
        cases = expected["cases"]
        tok_summary.append({"tokenizer": name, "vocab": expected["vocab_size"], "cases": len(cases),
                            "roundtrip": sum(c["roundtrip"] for c in cases)})

    # 1. sp_llama
    sp_dir = os.path.join(out, "tokenizers", "sp_llama")
    sp = train_sentencepiece(paragraphs, sp_dir, work)
    record_tokenizer("sp_llama", sp_expected(sp, cases_for("sp_llama")))
    tok_infos["sp_llama"] = {"kind": "sentencepiece", "vocab_size": sp.get_piece_size(), "bos_id": sp.bos_id(),
                             "eos_id": sp.eos_id(), "pad_id": None,
                             "encode": lambda t, sp=sp: [sp.bos_id()] + sp.encode(t)}

    if args.only != "sp":
        # 2-4. tokenizer.json kinds
        bpe_builders = [
            ("bpe_llama3", lambda d: save_hf_fast(
                train_bytelevel_bpe(paragraphs, LLAMA3_PATTERN, False, 1280, LLAMA3_SPECIALS, [], "bos"),
                d, chat_template=LLAMA3_CHAT_TEMPLATE, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
                add_bos_token=True, add_eos_token=False)),
            ("bpe_qwen2", lambda d: save_hf_fast(
                train_bytelevel_bpe(paragraphs, QWEN2_PATTERN, True, 1200, QWEN2_SPECIALS,
                                    QWEN2_ADDED_NON_SPECIAL, "bytelevel"),
                d, chat_template=QWEN2_CHAT_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")),
            ("bpe_sp_style", lambda d: convert_sp_style(sp_dir, d, sp, notes)),
        ]
        from transformers import AutoTokenizer
        for name, builder in bpe_builders:
            d = os.path.join(out, "tokenizers", name)
            try:
                builder(d)
                expected = hf_expected(d, cases_for(name), name, notes)
                record_tokenizer(name, expected)
                notes.setdefault("tokenizer_pipelines", {})[name] = pipeline_summary(os.path.join(d, "tokenizer.json"))
                notes.setdefault("tokenizer_files", {})[name] = sorted(os.listdir(d))
                hf = AutoTokenizer.from_pretrained(d)
                tok_infos[name] = {"kind": "bpe", "vocab_size": len(hf), "bos_id": hf.bos_token_id,
                                   "eos_id": hf.eos_token_id, "pad_id": hf.pad_token_id,
                                   "encode": lambda t, hf=hf: hf(t)["input_ids"]}
            except Exception:  # noqa: BLE001
                notes["errors"].append({"tokenizer": name, "traceback": traceback.format_exc()})
                log(f"ERROR tokenizer {name}:\n{traceback.format_exc()}")
        # sp_llama against its own transformers conversion (informational).
        if "bpe_sp_style" in tok_infos:
            conv = tok_infos["bpe_sp_style"]["encode"]
            same = sum(conv(t) == [sp.bos_id()] + sp.encode(t) for t in common_cases())
            notes["sp_vs_converted_same_ids"] = f"{same}/{len(common_cases())}"

    model_summary = []
    if args.only == "all":
        for spec in MODEL_SPECS:
            if spec["tokenizer"] not in tok_infos:
                notes["errors"].append({"model": spec["name"], "error": "tokenizer missing"})
                continue
            try:
                log(f"model {spec['name']} ...")
                model_summary.append(build_model(spec, out, tok_infos, notes))
            except Exception:  # noqa: BLE001
                notes["errors"].append({"model": spec["name"], "traceback": traceback.format_exc()})
                log(f"ERROR model {spec['name']}:\n{traceback.format_exc()}")

    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(README)
    manifest = {
        "generator": "scripts/make_golden.py",
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "versions": versions(),
        "platform": platform.platform(),
        "seed": SEED,
        "min_gap_required": MIN_GAP,
        "seconds": round(time.time() - t0, 1),
        "tokenizers": tok_summary,
        "models": model_summary,
        "notes": notes,
        "files": file_manifest(out),
    }
    write_json(os.path.join(out, "manifest.json"), manifest)
    shutil.rmtree(work, ignore_errors=True)

    log("\n%-18s %6s %8s %s" % ("tokenizer", "vocab", "cases", "roundtrip"))
    for t in tok_summary:
        log("%-18s %6d %8d %d" % (t["tokenizer"], t["vocab"], t["cases"], t["roundtrip"]))
    log("\n%-18s %6s %8s %-22s %-9s %s" % ("model", "vocab", "prompts", "lengths", "min_gap", "distinct greedy ids"))
    for m in model_summary:
        log("%-18s %6d %8d %-22s %-9.4g %s" % (m["model"], m["vocab"], m["prompts"], str(m["lengths"]), m["min_gap"],
                                               m["distinct"]))
    total = sum(v["bytes"] for v in manifest["files"].values())
    log(f"\n{len(manifest['files'])} files, {total / 1e6:.2f} MB, {manifest['seconds']} s, "
        f"{len(notes['errors'])} errors")

    if args.archive:
        with tarfile.open(args.archive, "w:gz") as tar:
            tar.add(out, arcname=os.path.basename(out.rstrip("/")))
        log(f"archive: {args.archive} ({os.path.getsize(args.archive) / 1e6:.2f} MB)")
    return 1 if notes["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
