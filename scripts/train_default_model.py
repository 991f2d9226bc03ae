#!/usr/bin/env python3
"""Trains strata's embedded default model (models/default/) from scratch: a small Llama.

Two steps, each reproducible from fixed seeds:

  prepare  (any machine with the Debian packages named below; needs sentencepiece)
      Gathers English prose from Python docstrings (the standard library, PSF licence, and a
      few permissively licensed Debian Python packages), keeps a held-out split, writes
      synthetic text samples, and trains the SentencePiece tokenizer.
        /usr/bin/python3 scripts/train_default_model.py prepare --work build-data/default_model

  train    (one GPU; needs torch >= 2.1, sentencepiece, numpy; transformers
           optional, for the export check)
      Generates the synthetic data (stories, facts, Q&A, arithmetic, chat, passkey and
      key-value retrieval in 512-16K-token contexts) on the fly, trains for a fixed number of
      steps, exports a Hugging Face checkpoint folder and checks it against transformers.
        python3 scripts/train_default_model.py train --work build-data/default_model \
            --out OUT --steps N          (or --train-seconds S to pick N from measured speed)

`train --tiny` runs a few steps of a tiny configuration on the CPU as a smoke test.
"""

import argparse
import ast
import hashlib
import json
import math
import os
import random
import re
import sys
import time

SEED = 20251123

# ---------------------------------------------------------------------------------------------
# Model and training hyperparameters (recorded into the export's training_args.json).
# ---------------------------------------------------------------------------------------------
MODEL = dict(vocab_size=4096, hidden_size=256, intermediate_size=768, num_hidden_layers=8,
             num_attention_heads=4, num_key_value_heads=2, head_dim=64, rms_norm_eps=1e-5,
             rope_theta=500000.0, max_position_embeddings=16384, tie_word_embeddings=True)
TINY_MODEL = dict(MODEL, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=32)
TRAIN = dict(tokens_per_step=65536, lr=2e-3, min_lr_ratio=0.1, warmup_steps=150, weight_decay=0.1,
             beta1=0.9, beta2=0.95, grad_clip=1.0, answer_loss_weight=2.0,
             # shares of the rows of every batch: retrieval samples, copy drills (random spans
             # repeated, to grow induction heads early), and the rest plain text
             retrieval_fraction=0.45, copy_fraction=0.08, copy_fraction_early=0.25, copy_early_until=0.2,
             lengths=[256, 512, 1024, 2048, 4096, 8192, 16384],
             # (progress, longest sequence length allowed from then on): the curriculum.
             curriculum=[(0.0, 512), (0.06, 1024), (0.12, 2048), (0.2, 4096), (0.3, 8192), (0.42, 16384)],
             # text mix of the plain-text rows (the natural corpus is small: few epochs of it)
             text_mix={"natural": 0.03, "synthetic": 0.71, "chat": 0.26})

# Stage 2 (retrieval fine-tune after stage 1: `--stage2-seconds S`, or `--init DIR --stage2`): overrides.
STAGE2 = dict(lr=6e-4, warmup_steps=50, retrieval_fraction=0.6, copy_fraction=0.05, copy_fraction_early=0.05,
              curriculum=[(0.0, 16384)], kv_share=0.65)

SPECIALS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}"
                 "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")

# Retrieval formats: strata's `eval retrieval` (server/cli_eval.cpp) builds the same prompts.
PASSKEY_INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and "
                 "memorize it. I will quiz you about the important information there.")
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
PASSKEY_QUESTION = "What is the pass key? The pass key is"
KV_INTRO = ("Below is a long text with some key-value records hidden in it. Find them and "
            "memorize them. I will ask you about one of the values.")
KV_NEEDLE = "The value of key {key} is {value}."
KV_QUESTION = "What is the value of key {key}? The value of key {key} is"
CLASSIC_FILLER = ("The grass is green. The sky is blue. The sun is yellow. Here we go. "
                  "There and back again.")

# ---------------------------------------------------------------------------------------------
# Natural text: prose paragraphs of Python docstrings.
# ---------------------------------------------------------------------------------------------
# (root, licence) — every package here is in Debian 12; its copyright file is
# /usr/share/doc/python3-<name>/copyright (python3.11 for the standard library).
DOCSTRING_SOURCES = [
    ("/usr/lib/python3.11", "PSF-2.0 (Python standard library)"),
    ("/usr/lib/python3/dist-packages/numpy", "BSD-3-Clause"),
    ("/usr/lib/python3/dist-packages/sympy", "BSD-3-Clause"),
    ("/usr/lib/python3/dist-packages/torch", "BSD-3-Clause"),
    ("/usr/lib/python3/dist-packages/mpmath", "BSD-3-Clause"),
    ("/usr/lib/python3/dist-packages/setuptools", "MIT"),
    ("/usr/lib/python3/dist-packages/click", "BSD-3-Clause"),
    ("/usr/lib/python3/dist-packages/jinja2", "BSD-3-Clause"),
    ("/usr/lib/python3/dist-packages/pygments", "BSD-2-Clause"),
    ("/usr/lib/python3/dist-packages/requests", "Apache-2.0"),
    ("/usr/lib/python3/dist-packages/urllib3", "MIT"),
]
SKIP_DIRS = ("site-packages", "dist-packages/", "/test", "/tests", "idlelib", "lib2to3", "__pycache__")


def clean_paragraph(para):
    """One prose paragraph as a single line, or None when it does not read as prose."""
    lines = [l.strip() for l in para.strip().splitlines()]
    if not lines or any(l.startswith((">>>", "...", "..", "--", "==", "*", "-", "+", "|", ":", "$", "#"))
                        for l in lines):
        return None
    text = " ".join(lines)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r":[a-z]+:`~?([^`]*)`", r"\1", text)
    text = text.replace("`", "")
    if len(text) < 60 or not text.isascii() or "::" in text:
        return None
    if sum(c.isalpha() or c == " " for c in text) / len(text) < 0.85:
        return None
    if not text[0].isupper() or not text.endswith((".", "!", "?")):
        return None
    if text.count(". ") + text.count("? ") + text.count("! ") < 1 and len(text) < 160:
        return None
    if re.search(r"[{}<>=\\@#$%^&|~]|\w\(|\[\w", text):
        return None
    return text


def docstring_paragraphs(root):
    paragraphs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = dirpath[len(root):] + "/"
        if any(s in rel for s in SKIP_DIRS) or (root.endswith("python3.11") and "dist-packages" in dirpath):
            continue
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except Exception:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if not doc:
                        continue
                    for para in re.split(r"\n\s*\n", doc):
                        text = clean_paragraph(para)
                        if text:
                            paragraphs.append(text)
    return paragraphs


def pydoc_topic_paragraphs():
    import pydoc_data.topics as topics  # the Python Language Reference, PSF licence
    out = []
    for key in sorted(topics.topics):
        for para in re.split(r"\n\s*\n", topics.topics[key]):
            text = clean_paragraph(para)
            if text:
                out.append(text)
    return out


# ---------------------------------------------------------------------------------------------
# Synthetic English: stories, descriptions, facts, Q&A, arithmetic, chat.
# ---------------------------------------------------------------------------------------------
NAMES = [("Lily", "she"), ("Tom", "he"), ("Ben", "he"), ("Mia", "she"), ("Sam", "he"), ("Anna", "she"),
         ("Max", "he"), ("Lucy", "she"), ("Jack", "he"), ("Emma", "she"), ("Leo", "he"), ("Zoe", "she"),
         ("Tim", "he"), ("Sara", "she"), ("Nick", "he"), ("Ella", "she"), ("Oscar", "he"), ("Ruby", "she"),
         ("Finn", "he"), ("Grace", "she"), ("Noah", "he"), ("Ava", "she"), ("Hugo", "he"), ("Nora", "she")]
CREATURES = ["cat", "dog", "bird", "rabbit", "fox", "bear", "duck", "frog", "mouse", "owl", "horse",
             "squirrel", "turtle", "lion", "puppy", "kitten", "goat", "pig", "sheep", "deer"]
KIDS = ["girl", "boy", "child", "kid"]
ADJ_PERSON = ["little", "happy", "curious", "brave", "kind", "shy", "friendly", "clever", "small", "busy"]
ADJ_HOME = ["nice", "small", "big", "old", "pretty", "quiet", "warm", "little"]
HOMES = ["house", "cottage", "tree house", "hut", "farm", "small town", "village", "cabin"]
LANDMARKS = ["river", "forest", "lake", "hill", "park", "sea", "big field", "old bridge", "mountain", "garden"]
ACTIVITIES = ["play in the garden", "read books", "run in the park", "draw pictures", "sing songs",
              "swim in the lake", "climb trees", "look at the stars", "bake cookies", "help her mother",
              "help his father", "play with a ball", "ride a bike", "pick flowers", "build sand castles"]
GOALS = ["find a new friend", "see the sea", "climb the tall hill", "make a big cake",
         "learn to swim", "find the lost key", "fly a kite", "win the race", "grow a tall flower",
         "build a little boat", "visit the old tower", "catch a shiny fish"]
OBJECTS = ["ball", "box", "key", "hat", "book", "kite", "shell", "stone", "flower", "toy car", "map",
           "cup", "feather", "coin", "drum", "boat", "bell", "blanket", "basket", "lamp"]
ADJ_THING = ["red", "blue", "green", "yellow", "big", "small", "shiny", "old", "new", "soft", "round",
             "heavy", "pretty", "strange", "tiny", "bright", "dusty", "golden"]
PLACES = ["park", "beach", "forest", "market", "school", "garden", "library", "farm", "zoo", "pond",
          "playground", "shop", "kitchen", "field"]
FIND_WHERE = ["under a tree", "in the grass", "near the river", "behind the house", "on the path",
              "in an old box", "under the bed", "by the fence", "in the sand", "on a high shelf"]
EMOTIONS = ["sad", "scared", "lonely", "tired", "worried", "hungry", "cold", "lost"]
GOOD_EMOTIONS = ["happy", "glad", "proud", "excited", "thankful", "calm"]
PROBLEMS = ["stuck in a tree", "too high to reach", "broken", "very heavy", "lost in the tall grass",
            "on the other side of the river", "covered in mud"]
HELPS = ["helped {o}", "showed {o} the way", "gave {o} a hand", "shared a snack with {o}",
         "told {o} not to give up", "held {o} tight"]
MORALS = ["it is good to share", "friends help each other", "it is fine to ask for help",
          "being kind makes everyone happy", "trying again is brave", "small things can matter a lot",
          "it is important to listen", "patience is a good thing"]
TIMES = ["morning", "afternoon", "evening", "sunny day", "rainy day", "cold winter day", "warm summer day"]
SAYS = ["said", "asked", "shouted", "whispered", "replied", "cried"]
LINES_EXCITED = ["Look at this!", "Wow, this is great!", "I found it!", "Can we play together?",
                 "Let us go and see!", "What a nice day!", "This is so much fun!"]
LINES_WORRY = ["What should I do?", "Can you help me?", "I do not know the way.", "I am a bit scared.",
               "Where did it go?", "Please wait for me!"]
LINES_KIND = ["Do not worry, I will help you.", "Let us do it together.", "You can do it!",
              "Thank you so much!", "You are a good friend.", "Come with me."]

FACTS = [
    "The sun is a star.", "The earth goes around the sun.", "The moon goes around the earth.",
    "Water freezes at zero degrees Celsius.", "Water boils at one hundred degrees Celsius.",
    "A week has seven days.", "A year has twelve months.", "A day has twenty-four hours.",
    "An hour has sixty minutes.", "A minute has sixty seconds.", "Plants need water and light to grow.",
    "Fish live in water.", "Birds have feathers and wings.", "Bees make honey.", "Cows give milk.",
    "Spiders have eight legs.", "Insects have six legs.", "A triangle has three sides.",
    "A square has four equal sides.", "The sky looks blue on a clear day.", "Snow is cold and white.",
    "Ice is frozen water.", "The heart pumps blood through the body.", "People breathe air with their lungs.",
    "Trees give us wood and shade.", "The ocean is full of salt water.", "Rain falls from clouds.",
    "A rainbow has many colors.", "Lemons taste sour.", "Sugar tastes sweet.", "Fire is hot.",
    "The night sky is full of stars.", "Owls can see well at night.", "Elephants are very large animals.",
    "A baby cat is called a kitten.", "A baby dog is called a puppy.", "A baby cow is called a calf.",
    "Frogs can jump far.", "Penguins are birds that cannot fly.", "Whales live in the ocean.",
    "Bread is made from flour.", "Apples grow on trees.", "Carrots grow under the ground.",
    "Summer is usually the warmest season.", "Winter is usually the coldest season.",
    "In autumn many leaves fall from the trees.", "In spring many flowers bloom.",
    "A computer runs programs.", "A program is a list of instructions for a computer.",
    "Python is a programming language.", "A library is a place with many books.",
    "Doctors help sick people.", "Teachers help children learn.", "Farmers grow food.",
    "Mountains are much higher than hills.", "A river flows into a lake or the sea.",
    "The north pole is very cold.", "Deserts get very little rain.", "Cats like to sleep in warm places.",
    "Dogs are loyal friends.", "Horses can run fast.", "Turtles carry their shells on their backs.",
    "Light travels faster than sound.", "Magnets pull on iron.", "Metal can conduct electricity.",
    "Green is a mix of blue and yellow.", "Ten is more than five.", "Zero is less than one.",
    "Even numbers can be split into two equal parts.", "A circle is round.", "Clocks tell the time.",
    "Maps show where places are.", "Seeds grow into plants.", "Wool comes from sheep.",
]
QA = [
    ("What color is the sky?", "The sky is blue."), ("What color is grass?", "Grass is green."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("How many months are in a year?", "There are twelve months in a year."),
    ("What do bees make?", "Bees make honey."), ("Where do fish live?", "Fish live in water."),
    ("What is ice?", "Ice is frozen water."), ("What is the sun?", "The sun is a star."),
    ("What does a plant need to grow?", "A plant needs water and light to grow."),
    ("What is a baby cat called?", "A baby cat is called a kitten."),
    ("What is a baby dog called?", "A baby dog is called a puppy."),
    ("Can penguins fly?", "No, penguins cannot fly."), ("Is fire hot?", "Yes, fire is hot."),
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("What is Python?", "Python is a programming language."),
    ("What is a program?", "A program is a list of instructions for a computer."),
    ("What do farmers do?", "Farmers grow food."), ("What do doctors do?", "Doctors help sick people."),
    ("What color is snow?", "Snow is white."), ("What do cows give?", "Cows give milk."),
    ("What is bread made from?", "Bread is made from flour."),
    ("Which season is the coldest?", "Winter is usually the coldest season."),
    ("How many hours are in a day?", "There are twenty-four hours in a day."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("What is the capital of Spain?", "The capital of Spain is Madrid."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin."),
    ("What is the largest ocean?", "The Pacific is the largest ocean."),
]
GREETINGS = [("Hello!", "Hello! How can I help you today?"), ("Hi.", "Hi there! What can I do for you?"),
             ("Good morning!", "Good morning! How are you today?"),
             ("How are you?", "I am fine, thank you. How can I help you?"),
             ("Who are you?", "I am a small language model that runs inside strata. I can answer simple questions and tell short stories."),
             ("What can you do?", "I can answer simple questions, do small sums and tell short stories."),
             ("Thank you!", "You are welcome! Is there anything else I can help with?"),
             ("Bye!", "Goodbye! Have a nice day.")]
SYSTEM_PROMPTS = ["You are a helpful assistant.", "You are a friendly assistant. Answer briefly.",
                  "You are strata's small default model. Be helpful and kind."]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve"]


def _cap(s):
    return s[0].upper() + s[1:]


def make_story(rng, who=None):
    name, pron = rng.choice(NAMES)
    obj_pron = "her" if pron == "she" else "him"
    poss = "her" if pron == "she" else "his"
    friend_name, _ = rng.choice([n for n in NAMES if n[0] != name])
    friend_kind = rng.choice(CREATURES)
    friend = rng.choice([friend_name, "a " + friend_kind, "a " + rng.choice(ADJ_PERSON) + " " + friend_kind])
    friend_ref = friend if friend == friend_name else "the " + friend.split()[-1]
    who = who or rng.choice(CREATURES + KIDS)
    thing = rng.choice(OBJECTS)
    thing_adj = rng.choice(ADJ_THING)
    s = []
    s.append(rng.choice([
        f"Once upon a time, there was a {rng.choice(ADJ_PERSON)} {who} named {name}.",
        f"One {rng.choice(TIMES)}, a {rng.choice(ADJ_PERSON)} {who} named {name} went to the {rng.choice(PLACES)}.",
        f"{name} was a {rng.choice(ADJ_PERSON)} {who} who loved to {rng.choice(ACTIVITIES)}.",
        f"There once lived a {who} called {name}."]))
    if rng.random() < 0.7:
        s.append(f"{_cap(pron)} lived in a {rng.choice(ADJ_HOME)} {rng.choice(HOMES)} near the {rng.choice(LANDMARKS)}.")
    if rng.random() < 0.6:
        s.append(rng.choice([f"Every day, {pron} liked to {rng.choice(ACTIVITIES)}.",
                             f"{_cap(pron)} wanted to {rng.choice(GOALS)}.",
                             f"More than anything, {name} wanted to {rng.choice(GOALS)}."]))
    s.append(rng.choice([
        f"One day, {name} found a {thing_adj} {thing} {rng.choice(FIND_WHERE)}.",
        f"One day, {name} saw a {thing_adj} {thing} {rng.choice(FIND_WHERE)}.",
        f"On the way home, {name} met {friend}."]))
    if rng.random() < 0.7:
        line = rng.choice(LINES_EXCITED)
        s.append(f"\"{line}\" {name} {rng.choice(['said', 'shouted'])}.")
    if rng.random() < 0.75:
        s.append(rng.choice([
            f"But the {thing} was {rng.choice(PROBLEMS)}.",
            f"But soon {name} felt {rng.choice(EMOTIONS)}.",
            f"Then the sky turned dark and it began to rain."]))
        s.append(f"\"{rng.choice(LINES_WORRY)}\" {pron} {rng.choice(['asked', 'said', 'cried'])}.")
        s.append(f"Then {friend_ref if friend_ref != name else 'a friend'} came and "
                 f"{rng.choice(HELPS).format(o=obj_pron)}.")
        s.append(f"\"{rng.choice(LINES_KIND)}\" {rng.choice(SAYS[4:5] + SAYS[:1])} {friend_ref}.")
    s.append(rng.choice([
        f"In the end, {name} and {friend_ref} became good friends.",
        f"{name} learned that {rng.choice(MORALS)}.",
        f"That night, {name} went to sleep with a big smile.",
        f"{name} felt {rng.choice(GOOD_EMOTIONS)} and went home to tell {poss} family.",
        f"From that day on, {name} kept the {thing} in a safe place."]))
    return fix_articles(" ".join(s))


def fix_articles(text):
    return re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", text)


def make_description(rng):
    thing = rng.choice(OBJECTS)
    a1, a2 = rng.sample(ADJ_THING, 2)
    place = rng.choice(PLACES)
    return fix_articles(rng.choice([
        f"The {thing} is {a1} and {a2}. It sits in the {place}. Children like to look at it.",
        f"In the {place} there is a {a1} {thing}. Next to it is a {a2} {rng.choice(OBJECTS)}.",
        f"This is a {a1} {thing}. It is not {a2}. You can find it in the {place}.",
    ]))


def make_facts(rng):
    return " ".join(rng.sample(FACTS, rng.randint(2, 6)))


def make_qa(rng):
    pairs = rng.sample(QA, rng.randint(1, 4))
    return " ".join(f"Question: {q} Answer: {a}" for q, a in pairs)


def arithmetic_pair(rng):
    op = rng.choice(["plus", "minus", "times"])
    a, b = rng.randint(0, 99 if op != "times" else 12), rng.randint(0, 99 if op != "times" else 12)
    if op == "minus" and b > a:
        a, b = b, a
    c = a + b if op == "plus" else a - b if op == "minus" else a * b
    sym = {"plus": "+", "minus": "-", "times": "*"}[op]
    style = rng.randint(0, 2)
    if style == 0:
        return f"What is {a} {op} {b}?", f"{a} {op} {b} is {c}."
    if style == 1:
        return f"What is {a} {sym} {b}?", f"{a} {sym} {b} = {c}."
    return f"Can you compute {a} {op} {b}?", f"Sure. {a} {op} {b} equals {c}."


def make_arithmetic(rng):
    out = []
    for _ in range(rng.randint(2, 6)):
        q, a = arithmetic_pair(rng)
        out.append(f"{q} {a}")
    return " ".join(out)


def make_synthetic_doc(rng):
    r = rng.random()
    if r < 0.55:
        return make_story(rng)
    if r < 0.65:
        return make_description(rng)
    if r < 0.78:
        return make_facts(rng)
    if r < 0.9:
        return make_qa(rng)
    return make_arithmetic(rng)


def make_chat(rng):
    """A list of (role, content) messages."""
    msgs = []
    if rng.random() < 0.3:
        msgs.append(("system", rng.choice(SYSTEM_PROMPTS)))
    for _ in range(rng.choice([1, 1, 2, 3])):
        r = rng.random()
        if r < 0.2:
            u, a = rng.choice(GREETINGS)
        elif r < 0.45:
            u, a = rng.choice(QA)
        elif r < 0.65:
            u, a = arithmetic_pair(rng)
        elif r < 0.9:
            if rng.random() < 0.3:
                who = rng.choice(CREATURES)
                u, a = f"Tell me a story about a {who}.", make_story(rng, who)
            else:
                u = rng.choice(["Tell me a story.", "Can you tell me a short story?", "Please tell me a story.",
                                "Write a short story for a child."])
                a = make_story(rng)
        else:
            u = rng.choice(["Tell me a fact.", "Tell me something interesting.", "Give me a fun fact."])
            a = rng.choice(FACTS)
        msgs.append(("user", u))
        msgs.append(("assistant", a))
    return msgs


def split_sentences(paragraph):
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", paragraph) if s]


# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------
def cmd_prepare(args):
    import sentencepiece as spm
    work = args.work
    os.makedirs(work, exist_ok=True)
    sources = []
    paragraphs = []
    for root, licence in DOCSTRING_SOURCES:
        if not os.path.isdir(root):
            print(f"prepare: {root} missing, skipped", file=sys.stderr)
            continue
        got = docstring_paragraphs(root)
        sources.append({"source": root + " (docstrings)", "licence": licence, "paragraphs": len(got)})
        paragraphs += got
    topics = pydoc_topic_paragraphs()
    sources.append({"source": "pydoc_data.topics (Python Language Reference)", "licence": "PSF-2.0",
                    "paragraphs": len(topics)})
    paragraphs += topics
    # Dedupe, keep order; hold out 2% by content hash.
    seen, train_p, heldout_p = set(), [], []
    for p in paragraphs:
        if p in seen:
            continue
        seen.add(p)
        h = int(hashlib.sha256(p.encode()).hexdigest()[:8], 16)
        (heldout_p if h % 50 == 0 else train_p).append(p)
    with open(os.path.join(work, "natural_train.txt"), "w") as f:
        f.write("\n".join(train_p) + "\n")
    with open(os.path.join(work, "natural_heldout.txt"), "w") as f:
        f.write("\n".join(heldout_p) + "\n")
    rng = random.Random(SEED + 1)
    synth_heldout = [make_synthetic_doc(rng) for _ in range(400)]
    with open(os.path.join(work, "synthetic_heldout.txt"), "w") as f:
        f.write("\n".join(synth_heldout) + "\n")

    # Tokenizer corpus: all natural text plus synthetic, chat and retrieval text.
    rng = random.Random(SEED + 2)
    corpus = list(train_p)
    corpus += [make_synthetic_doc(rng) for _ in range(30000)]
    for _ in range(5000):
        corpus.append(" ".join(c for _, c in make_chat(rng)))
    for _ in range(2000):
        corpus.append(f"{PASSKEY_INTRO} {CLASSIC_FILLER} {PASSKEY_NEEDLE.format(key=rng.randint(0, 10**7))} "
                      f"{PASSKEY_QUESTION} {rng.randint(0, 99999)}.")
        k = random_key(rng)
        corpus.append(f"{KV_INTRO} {KV_NEEDLE.format(key=k, value=rng.randint(0, 10**6))} {KV_QUESTION.format(key=k)}")
    corpus_path = os.path.join(work, "tokenizer_corpus.txt")
    with open(corpus_path, "w") as f:
        f.write("\n".join(corpus) + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=os.path.join(work, "tokenizer"), model_type="bpe",
        vocab_size=MODEL["vocab_size"], character_coverage=1.0, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, control_symbols=SPECIALS,
        input_sentence_size=2000000, shuffle_input_sentence=True, seed_sentencepiece_size=1000000,
        num_threads=2, max_sentence_length=1 << 15, minloglevel=2)
    os.remove(os.path.join(work, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(work, "tokenizer.model"))
    # Training data is built by concatenating pieces encoded separately; check that this equals
    # encoding the joined string (what strata does with a prompt).
    rng = random.Random(SEED + 3)
    for _ in range(300):
        parts = [make_synthetic_doc(rng), rng.choice(train_p), PASSKEY_NEEDLE.format(key=rng.randint(0, 10**6)),
                 KV_QUESTION.format(key=random_key(rng)), f"{rng.randint(0, 99999)}."]
        rng.shuffle(parts)
        joined = sp.encode(" ".join(parts))
        pieces = [t for p in parts for t in sp.encode(p)]
        assert joined == pieces, f"tokenization does not compose over spaces: {parts}"
    ntok = sum(len(x) for x in sp.encode(train_p))
    info = {"sources": sources, "natural_train_paragraphs": len(train_p),
            "natural_heldout_paragraphs": len(heldout_p), "natural_train_tokens": ntok,
            "python": sys.version, "sha256": {}}
    for name in ["natural_train.txt", "natural_heldout.txt", "synthetic_heldout.txt", "tokenizer.model"]:
        with open(os.path.join(work, name), "rb") as f:
            info["sha256"][name] = hashlib.sha256(f.read()).hexdigest()
    os.remove(corpus_path)
    with open(os.path.join(work, "prepare_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))


def random_key(rng):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4))


# ---------------------------------------------------------------------------------------------
# Data for training: token streams, filler banks, retrieval samples.
# ---------------------------------------------------------------------------------------------
class Vocab:
    def __init__(self, sp):
        self.sp = sp
        self.bos, self.eos = sp.bos_id(), sp.eos_id()
        self.special = {s: sp.piece_to_id(s) for s in SPECIALS}

    def chat_ids(self, msgs, add_bos=True):
        # As strata tokenizes the rendered chat template: control pieces split out, each text
        # chunk between them encoded on its own (so each gets SentencePiece's dummy prefix).
        ids = [self.bos] if add_bos else []
        for role, content in msgs:
            ids.append(self.special[f"<|{role}|>"])
            ids += self.sp.encode(content)
            ids.append(self.special["<|end|>"])
        return ids


def _synth_shard(args):
    model_file, shard, n_docs, kind = args
    import numpy as np
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model_file)
    v = Vocab(sp)
    rng = random.Random(SEED * 1000 + shard * 7 + (0 if kind == "synthetic" else 1))
    ids = []
    if kind == "synthetic":
        docs = [make_synthetic_doc(rng) for _ in range(n_docs)]
        for d in sp.encode(docs):
            ids.append(v.bos)
            ids += d
            ids.append(v.eos)
    else:
        for _ in range(n_docs):
            ids += v.chat_ids(make_chat(rng)) + [v.eos]
    return np.asarray(ids, dtype=np.int16 if MODEL["vocab_size"] <= 32767 else np.int32)


def _sentence_bank(args):
    model_file, sentences = args
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model_file)
    return sp.encode(sentences)


class DataSource:
    """Everything the batch builder needs; built once in the main process, shared by fork."""

    def __init__(self, work, synth_docs, chat_docs, processes):
        import numpy as np
        import sentencepiece as spm
        from multiprocessing import get_context
        model_file = os.path.join(work, "tokenizer.model")
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.v = Vocab(self.sp)
        with open(os.path.join(work, "natural_train.txt")) as f:
            natural = [l.strip() for l in f if l.strip()]
        ctx = get_context("fork")
        with ctx.Pool(processes) as pool:
            shards = max(1, processes * 2)
            jobs = [(model_file, s, synth_docs // shards, "synthetic") for s in range(shards)]
            jobs += [(model_file, s, chat_docs // shards, "chat") for s in range(shards)]
            streams = pool.map(_synth_shard, jobs)
            self.streams = {"synthetic": np.concatenate(streams[:shards]), "chat": np.concatenate(streams[shards:])}
            nat = []
            for d in self.sp.encode(natural):
                nat += [self.v.bos] + d + [self.v.eos]
            self.streams["natural"] = np.asarray(nat, dtype=self.streams["synthetic"].dtype)
            # Filler banks: sentences as token arrays.
            rng = random.Random(SEED + 5)
            nat_sents = [s for p in natural for s in split_sentences(p) if 20 <= len(s) <= 400]
            syn_sents = [s for _ in range(20000) for s in split_sentences(make_synthetic_doc(rng))]
            chunks = [(model_file, nat_sents[i::processes]) for i in range(processes)]
            self.natural_sentences = [np.asarray(t, dtype=np.int32) for r in pool.map(_sentence_bank, chunks) for t in r]
            chunks = [(model_file, syn_sents[i::processes]) for i in range(processes)]
            self.synthetic_sentences = [np.asarray(t, dtype=np.int32) for r in pool.map(_sentence_bank, chunks) for t in r]
        self.classic_sentences = [np.asarray(t, dtype=np.int32) for t in self.sp.encode(split_sentences(CLASSIC_FILLER))]
        self.enc = lambda s: self.sp.encode(s)

    def summary(self):
        return {k: int(v.size) for k, v in self.streams.items()} | {
            "natural_sentences": len(self.natural_sentences), "synthetic_sentences": len(self.synthetic_sentences)}


def build_retrieval_sample(ds, rng, length):
    """Returns (ids[length+1], answer_mask[length+1] over target positions, lm_mask)."""
    import numpy as np
    sp = ds.sp
    kind = "kv" if rng.random() < TRAIN.get("kv_share", 0.5) else "passkey"
    r = rng.random()
    bank = ds.classic_sentences if r < 0.35 else ds.natural_sentences if r < 0.7 else ds.synthetic_sentences
    filler_lm = bank is ds.synthetic_sentences
    if kind == "passkey":
        key = str(rng.randint(0, 10 ** rng.randint(3, 7) - 1))
        intro = ds.enc(PASSKEY_INTRO)
        needles = [ds.enc(PASSKEY_NEEDLE.format(key=key))]
        qa = [(ds.enc(PASSKEY_QUESTION), ds.enc(f"{key}."))]
    else:
        n_pairs = rng.randint(1, 8 if length >= 1024 else 3)
        keys = set()
        while len(keys) < n_pairs:
            keys.add(random_key(rng))
        keys = list(keys)
        values = [str(rng.randint(0, 10 ** rng.randint(3, 7) - 1)) for _ in keys]
        intro = ds.enc(KV_INTRO)
        needles = [ds.enc(KV_NEEDLE.format(key=k, value=v)) for k, v in zip(keys, values)]
        asked = rng.sample(range(n_pairs), min(n_pairs, rng.randint(1, 3)))
        qa = [(ds.enc(KV_QUESTION.format(key=keys[i])), ds.enc(f"{values[i]}.")) for i in asked]
    tail_len = sum(len(q) + len(a) for q, a in qa) + 1  # + EOS
    # Plain text after the sample most of the time, so that the answer does not always end at
    # the last position of the row (else the model learns where answers end from the position).
    suffix_len = rng.randint(0, length // 4) if rng.random() < 0.75 else 0
    budget = length + 1 - 1 - len(intro) - sum(len(n) for n in needles) - tail_len - suffix_len  # - BOS
    # Filler: sentences until the budget is used; the remainder becomes a text prefix.
    filler = []
    used = 0
    if bank is ds.classic_sentences:
        i = 0
        while used + len(bank[i % len(bank)]) <= budget:
            filler.append(bank[i % len(bank)])
            used += len(bank[i % len(bank)])
            i += 1
    else:
        while True:
            s = bank[rng.randrange(len(bank))]
            if used + len(s) > budget:
                break
            filler.append(s)
            used += len(s)
    # Needles at random depths (sentence boundaries).
    # edge_needle_share (fine-tunes): a needle's depth is drawn from the first or last tenth
    # of the filler that often, where long-context retrieval misses most.
    edge = TRAIN.get("edge_needle_share", 0.0)

    def depth():
        if rng.random() < edge:
            tenth = max(1, len(filler) // 10)
            return rng.randint(0, tenth) if rng.random() < 0.5 else rng.randint(len(filler) - tenth, len(filler))
        return rng.randint(0, len(filler))
    positions = sorted(depth() for _ in needles)
    order = list(range(len(needles)))
    rng.shuffle(order)
    body = []
    ni = 0
    for i in range(len(filler) + 1):
        while ni < len(positions) and positions[ni] == i:
            body.append(needles[order[ni]])
            ni += 1
        if i < len(filler):
            body.append(filler[i])
    pieces = [np.asarray([ds.v.bos], np.int32), np.asarray(intro, np.int32)] + body
    lm_flags = [False, False] + [filler_lm] * len(body)
    ans_flags = [False, False] + [False] * len(body)
    for i, (q, a) in enumerate(qa):
        pieces += [np.asarray(q, np.int32), np.asarray(a + ([ds.v.eos] if i == len(qa) - 1 else []), np.int32)]
        lm_flags += [False, False]
        ans_flags += [False, True]
    core = np.concatenate(pieces)
    lm = np.concatenate([np.full(len(p), f) for p, f in zip(pieces, lm_flags)])
    ans = np.concatenate([np.full(len(p), f) for p, f in zip(pieces, ans_flags)])
    if suffix_len:
        core = np.concatenate([core, text_window(ds, rng, suffix_len)])
        lm = np.concatenate([lm, np.ones(suffix_len, bool)])
        ans = np.concatenate([ans, np.zeros(suffix_len, bool)])
    pad = length + 1 - len(core)
    assert pad >= 0, (pad, length)
    if pad:
        prefix = text_window(ds, rng, pad)
        core = np.concatenate([prefix, core])
        lm = np.concatenate([np.ones(pad, bool), lm])
        ans = np.concatenate([np.zeros(pad, bool), ans])
    # Masks refer to targets: target t is core[t+1].
    return core, ans[1:], lm[1:]


def build_copy_row(ds, rng, length):
    """Random token spans, each followed later by a copy of itself; loss on the copies."""
    import numpy as np
    digits = [ds.sp.piece_to_id(str(d)) for d in range(10)]
    first_word = 7 + 256  # after <unk> <s> </s>, 4 control pieces and 256 byte pieces
    ids, mask = [ds.v.bos], [False]
    while len(ids) < length + 1:
        k = rng.randint(3, 40)
        if rng.random() < 0.4:
            span = [rng.choice(digits) for _ in range(k)]
        else:
            span = [rng.randrange(first_word, MODEL["vocab_size"]) for _ in range(k)]
        gap = text_window(ds, rng, rng.randint(0, 48)).tolist() if rng.random() < 0.7 else []
        ids += span + gap + span
        mask += [False] * (k + len(gap)) + [False] + [True] * (k - 1)
    ids = np.asarray(ids[:length + 1], np.int64)
    mask = np.asarray(mask[:length + 1], bool)
    return ids, mask[1:]


def text_window(ds, rng, n):
    import numpy as np
    r = rng.random()
    acc = 0.0
    for name, p in TRAIN["text_mix"].items():
        acc += p
        if r < acc:
            break
    s = ds.streams[name]
    if len(s) <= n:
        reps = n // len(s) + 2
        s = np.tile(s, reps)
    start = rng.randrange(len(s) - n)
    return s[start:start + n].astype(np.int32)


def length_for_step(step, total_steps, rng):
    progress = step / max(1, total_steps)
    longest = TRAIN["curriculum"][0][1]
    for p, l in TRAIN["curriculum"]:
        if progress >= p:
            longest = l
    allowed = [l for l in TRAIN["lengths"] if l <= longest]
    return rng.choice(allowed)


def make_batch(ds, step, total_steps, tokens_per_step, max_len, force_len=None):
    import numpy as np
    rng = random.Random(SEED * 7919 + step)
    length = min(length_for_step(step, total_steps, rng), max_len)
    if force_len:
        length = force_len
    b = max(1, tokens_per_step // length)
    n_ret = max(1, round(b * TRAIN["retrieval_fraction"])) if b > 1 else (step % 2)
    early = step / max(1, total_steps) < TRAIN["copy_early_until"]
    n_copy = round(b * TRAIN["copy_fraction_early" if early else "copy_fraction"])
    x = np.zeros((b, length + 1), np.int64)
    ans = np.zeros((b, length), bool)
    lm = np.zeros((b, length), bool)
    for i in range(b):
        if i < n_ret:
            ids, a, m = build_retrieval_sample(ds, rng, length)
            x[i], ans[i], lm[i] = ids, a, m
        elif i < n_ret + n_copy:
            x[i], lm[i] = build_copy_row(ds, rng, length)
        else:
            x[i] = text_window(ds, rng, length + 1)
            lm[i] = True
    return x, ans, lm, length


# ---------------------------------------------------------------------------------------------
# The model (Hugging Face Llama semantics, written out so the same code runs on old CPU torch).
# ---------------------------------------------------------------------------------------------
def build_model(cfg):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))
            self.eps = eps

        def forward(self, x):
            dtype = x.dtype
            x = x.float()
            x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
            return self.weight * x.to(dtype)

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            d, hd = cfg["hidden_size"], cfg["head_dim"]
            self.nh, self.nkv, self.hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], hd
            self.q_proj = nn.Linear(d, self.nh * hd, bias=False)
            self.k_proj = nn.Linear(d, self.nkv * hd, bias=False)
            self.v_proj = nn.Linear(d, self.nkv * hd, bias=False)
            self.o_proj = nn.Linear(self.nh * hd, d, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q = self.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)
            k = self.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
            v = self.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
            q = (q * cos.to(q.dtype)) + (rotate_half(q) * sin.to(q.dtype))
            k = (k * cos.to(k.dtype)) + (rotate_half(k) * sin.to(k.dtype))
            rep = self.nh // self.nkv
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            if hasattr(F, "scaled_dot_product_attention"):
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:  # old CPU torch (smoke tests only)
                att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
                att = att.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
                o = att.softmax(-1) @ v
            return self.o_proj(o.transpose(1, 2).reshape(b, t, self.nh * self.hd))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            d, f = cfg["hidden_size"], cfg["intermediate_size"]
            self.gate_proj = nn.Linear(d, f, bias=False)
            self.up_proj = nn.Linear(d, f, bias=False)
            self.down_proj = nn.Linear(f, d, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()
            self.mlp = MLP()
            self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
            self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

        def forward(self, x, cos, sin):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
            self.layers = nn.ModuleList([Layer() for _ in range(cfg["num_hidden_layers"])])
            self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()
            hd = cfg["head_dim"]
            inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
            self.register_buffer("inv_freq", inv_freq, persistent=False)
            std = 0.02
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    s = std / math.sqrt(2 * cfg["num_hidden_layers"]) if name.endswith(("o_proj.weight", "down_proj.weight")) else std
                    nn.init.normal_(p, 0.0, s)

        def rope(self, t, device):
            pos = torch.arange(t, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.inv_freq.to(device))
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos()[None, None], emb.sin()[None, None]

        def hidden(self, ids):
            cos, sin = self.rope(ids.shape[1], ids.device)
            x = self.model.embed_tokens(ids)
            for layer in self.model.layers:
                x = layer(x, cos, sin)
            return self.model.norm(x)

        def forward(self, ids):
            return F.linear(self.hidden(ids), self.model.embed_tokens.weight)

    return Llama()


def save_safetensors(tensors, path):
    """Writes a safetensors file (bf16/f32 tensors); no dependency on the safetensors package."""
    import torch
    names = {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype in (torch.bfloat16, torch.float16) else t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    import numpy as np
    import torch
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        if info["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.float32).copy())
        out[name] = t.reshape(info["shape"])
    return out


def num_params(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
def export(model, cfg, work, out_dir, train_record):
    import shutil
    import torch
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}
    save_safetensors(sd, os.path.join(out_dir, "model.safetensors"))
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(work, "tokenizer.model"))
    end_id = sp.piece_to_id("<|end|>")
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg["vocab_size"], "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"], "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"], "num_key_value_heads": cfg["num_key_value_heads"],
        "head_dim": cfg["head_dim"], "hidden_act": "silu", "max_position_embeddings": cfg["max_position_embeddings"],
        "rms_norm_eps": cfg["rms_norm_eps"], "rope_theta": cfg["rope_theta"], "rope_scaling": None,
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
        "tie_word_embeddings": cfg["tie_word_embeddings"], "initializer_range": 0.02, "pretraining_tp": 1,
        "bos_token_id": sp.bos_id(), "eos_token_id": sp.eos_id(), "torch_dtype": "bfloat16", "use_cache": True,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": sp.bos_id(), "eos_token_id": [sp.eos_id(), end_id], "do_sample": False,
                   "max_new_tokens": 128}, f, indent=2)
    shutil.copy(os.path.join(work, "tokenizer.model"), os.path.join(out_dir, "tokenizer.model"))
    added = {str(i): {"content": sp.id_to_piece(i), "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True}
             for i in [sp.unk_id(), sp.bos_id(), sp.eos_id()] + [sp.piece_to_id(s) for s in SPECIALS]}
    tok_cfg = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
               "pad_token": None, "add_bos_token": True, "add_eos_token": False, "legacy": True,
               "add_prefix_space": True, "clean_up_tokenization_spaces": False,
               "model_max_length": cfg["max_position_embeddings"], "added_tokens_decoder": added,
               "additional_special_tokens": SPECIALS, "chat_template": CHAT_TEMPLATE}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "additional_special_tokens": SPECIALS}, f, indent=2)
    with open(os.path.join(out_dir, "training_args.json"), "w") as f:
        json.dump(train_record, f, indent=2)


# ---------------------------------------------------------------------------------------------
# Evaluation inside the training script (GPU, fast): perplexity, retrieval, samples.
# ---------------------------------------------------------------------------------------------
def perplexity(model, ds_sp, lines, device, max_len=1024):
    import torch
    import torch.nn.functional as F
    nll, count = 0.0, 0
    with torch.no_grad():
        for line in lines:
            ids = [ds_sp.bos_id()] + ds_sp.encode(line) + [ds_sp.eos_id()]
            ids = ids[:max_len]
            x = torch.tensor([ids], device=device)
            logits = model(x[:, :-1]).float()
            nll += F.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
            count += len(ids) - 1
    return math.exp(nll / count), count


def classic_prompt(sp, length, depth, key, kind, rng, kv_pairs=4):
    """The prompt strata's eval builds (server/cli_eval.cpp): same text, same sizing rule."""
    others = []
    if kind == "passkey":
        intro, needle, question = PASSKEY_INTRO, PASSKEY_NEEDLE.format(key=key), PASSKEY_QUESTION
    else:
        keys = []
        while len(keys) < kv_pairs:
            k = random_key(rng)
            if k not in keys:
                keys.append(k)
        intro, needle, question = KV_INTRO, KV_NEEDLE.format(key=keys[0], value=key), KV_QUESTION.format(key=keys[0])
        others = [KV_NEEDLE.format(key=k, value=rng.randint(10000, 99999)) for k in keys[1:]]
    sents = split_sentences(CLASSIC_FILLER)
    counts = [len(sp.encode(s)) for s in sents]
    fixed = 1 + len(sp.encode(intro)) + len(sp.encode(needle)) + len(sp.encode(question))
    fixed += sum(len(sp.encode(o)) for o in others)
    budget = length - fixed
    filler, used, i = [], 0, 0
    while used + counts[i % len(sents)] <= budget:
        filler.append(sents[i % len(sents)])
        used += counts[i % len(sents)]
        i += 1
    slots = sorted([(round(depth * len(filler)), 0)] + [(rng.randint(0, len(filler)), i + 1) for i in range(len(others))],
                   key=lambda x: x[0])
    needles = [needle] + others
    parts, si = [intro], 0
    for i in range(len(filler) + 1):
        while si < len(slots) and slots[si][0] == i:
            parts.append(needles[slots[si][1]])
            si += 1
        if i < len(filler):
            parts.append(filler[i])
    return " ".join(parts + [question])


def greedy(model, ids, n, device, stop):
    import torch
    out = []
    with torch.no_grad():
        x = torch.tensor([ids], device=device)
        for _ in range(n):
            nxt = int(model(x)[0, -1].argmax())
            if nxt in stop:
                break
            out.append(nxt)
            x = torch.cat([x, torch.tensor([[nxt]], device=device)], dim=1)
    return out


def retrieval_grid(model, sp, device, lengths, depths, samples, kind):
    rng = random.Random(SEED + 11)
    grid = {}
    for length in lengths:
        for depth in depths:
            ok = 0
            for _ in range(samples):
                key = str(rng.randint(10000, 99999))
                prompt = classic_prompt(sp, length, depth, key, kind, rng)
                ids = [sp.bos_id()] + sp.encode(prompt)
                out = sp.decode(greedy(model, ids, 7, device, {sp.eos_id()}))
                got = re.findall(r"\d+", out)
                ok += bool(got) and got[0] == key
            grid[f"{length}@{depth}"] = ok / samples
    return grid


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
def make_step_loss(model, device, amp):
    import torch.nn.functional as F

    def step_loss(x, ans, lm):
        x = x.to(device, non_blocking=True)
        ans = ans.to(device, non_blocking=True)
        lm = lm.to(device, non_blocking=True)
        with amp:
            logits = model(x[:, :-1])
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                             reduction="none").view(ans.shape)
        lm_f, ans_f = lm.float(), ans.float()
        lm_loss = (ce * lm_f).sum() / lm_f.sum().clamp(min=1)
        ans_loss = (ce * ans_f).sum() / ans_f.sum().clamp(min=1)
        correct = ((logits.argmax(-1) == x[:, 1:]) | ~ans).all(-1)
        rows = ans.any(-1)
        return lm_loss, ans_loss, correct, rows

    return step_loss


def plan_steps(model, ds, step_loss, device, tokens_per_step, max_len, seconds):
    """Number of steps that fit in `seconds`: measured speed of every length, over the curriculum."""
    import torch
    per_len = {}
    for length in [l for l in TRAIN["lengths"] if l <= max_len]:
        x, ans, lm, _ = make_batch(ds, 10 ** 9 + length, 1, tokens_per_step, max_len, force_len=length)
        x, ans, lm = torch.from_numpy(x), torch.from_numpy(ans), torch.from_numpy(lm)
        times = []
        for _ in range(4):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.time()
            lm_loss, ans_loss, _, _ = step_loss(x, ans, lm)
            (lm_loss + ans_loss).backward()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.time() - t0)
        model.zero_grad(set_to_none=True)
        per_len[length] = min(times[1:]) * 1.05  # + optimizer step; the first run warms up
    probe = 20000
    rng = random.Random(1)
    mean = sum(per_len[min(length_for_step(s, probe, rng), max_len)] for s in range(probe)) / probe
    total_steps = max(1, int(seconds / mean))
    est = {"seconds_per_step_by_length": per_len, "mean_seconds_per_step": mean}
    print(f"timing: {est}; steps = {total_steps}", flush=True)
    return total_steps, est


def train_stage(name, model, ds, device, args, tokens_per_step, max_len, seconds, steps, hard_stop_seconds):
    """One training stage under the current TRAIN settings; returns its record."""
    import torch
    amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast(
        device_type="cpu", dtype=torch.bfloat16, enabled=False)
    step_loss = make_step_loss(model, device, amp)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt_kwargs = dict(lr=TRAIN["lr"], betas=(TRAIN["beta1"], TRAIN["beta2"]))
    if device == "cuda":
        opt_kwargs["fused"] = True
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], **opt_kwargs)
    if steps:
        total_steps, est = steps, None
    else:
        total_steps, est = plan_steps(model, ds, step_loss, device, tokens_per_step, max_len, seconds)

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            for step in range(wid, total_steps, nw):
                x, ans, lm, _ = make_batch(ds, step, total_steps, tokens_per_step, max_len)
                yield torch.from_numpy(x), torch.from_numpy(ans), torch.from_numpy(lm)

    processes = args.processes or max(1, min(14, (os.cpu_count() or 2) - 2))
    workers = 0 if args.tiny else min(6, processes)
    loader_kwargs = dict(num_workers=workers, prefetch_factor=4) if workers else {}
    # Workers fork when iteration starts, so they see this stage's TRAIN settings.
    loader = torch.utils.data.DataLoader(Batches(), batch_size=None, pin_memory=(device == "cuda"), **loader_kwargs)

    def lr_at(step):
        if step < TRAIN["warmup_steps"]:
            return TRAIN["lr"] * (step + 1) / TRAIN["warmup_steps"]
        p = (step - TRAIN["warmup_steps"]) / max(1, total_steps - TRAIN["warmup_steps"])
        return TRAIN["lr"] * (TRAIN["min_lr_ratio"] + (1 - TRAIN["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * p)))

    log = []
    t_train = time.time()
    tokens = 0
    stats = {}
    stopped_early = False
    step = -1
    model.train()
    for step, (x, ans, lm) in enumerate(loader):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        lm_loss, ans_loss, correct, rows = step_loss(x, ans, lm)
        loss = lm_loss + TRAIN["answer_loss_weight"] * ans_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        length = x.shape[1] - 1
        tokens += x.shape[0] * length
        s = stats.setdefault(length, [0, 0])
        if step % 10 == 0 or step == total_steps - 1:
            s[0] += int((correct & rows).sum())
            s[1] += int(rows.sum())
        if step % args.log_every == 0 or step == total_steps - 1:
            rec = {"stage": name, "step": step, "len": length, "lm_loss": round(lm_loss.item(), 4),
                   "answer_loss": round(ans_loss.item(), 4), "gnorm": round(float(gnorm), 3),
                   "lr": lr_at(step), "tokens": tokens, "elapsed_s": round(time.time() - t_train, 1),
                   "answer_acc_by_len": {k: round(v[0] / max(1, v[1]), 3) for k, v in sorted(stats.items())}}
            stats = {}
            log.append(rec)
            print(json.dumps(rec), flush=True)
        if hard_stop_seconds and time.time() - t_train > hard_stop_seconds:
            print(f"{name}: hard stop at step {step}", flush=True)
            stopped_early = True
            break
    train_seconds = time.time() - t_train
    print(f"{name}: trained {step + 1} steps, {tokens} tokens in {train_seconds:.1f}s", flush=True)
    return {"stage": name, "train": dict(TRAIN), "total_steps": total_steps, "steps_run": step + 1,
            "stopped_early": stopped_early, "tokens": tokens, "train_seconds": round(train_seconds, 1),
            "timing_estimate": est, "log": log}


def cmd_train(args):
    import numpy as np
    import torch
    t_start = time.time()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    random.seed(SEED)
    cfg = dict(TINY_MODEL if args.tiny else MODEL)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tokens_per_step = args.tokens_per_step or (4096 if args.tiny else TRAIN["tokens_per_step"])
    max_len = args.max_len or (2048 if args.tiny else cfg["max_position_embeddings"])
    processes = args.processes or max(1, min(14, (os.cpu_count() or 2) - 2))
    synth_docs = args.synth_docs or (2000 if args.tiny else 400000)
    chat_docs = synth_docs // 2

    ds = DataSource(args.work, synth_docs, chat_docs, processes)
    print(f"data ready in {time.time() - t_start:.1f}s: {ds.summary()}", flush=True)

    model = build_model(cfg)
    if args.init:
        sd = {k: v.float() for k, v in load_safetensors(os.path.join(args.init, "model.safetensors")).items()}
        model.load_state_dict(sd, strict=True)
        print(f"initialised from {args.init}", flush=True)
    model = model.to(device)
    print(f"parameters: {num_params(model)}", flush=True)

    # Stages: stage 1 (the curriculum) unless --stage2 alone; then stage 2 (retrieval
    # fine-tune at full length) when --stage2 or --stage2-seconds/--stage2-steps asks for it.
    stages = []
    if not args.stage2:
        stages.append(("stage1", {}, args.train_seconds, args.steps, args.hard_stop_seconds))
    if args.stage2 or args.stage2_seconds or args.stage2_steps:
        seconds = args.stage2_seconds or args.train_seconds
        stages.append(("stage2", STAGE2, seconds, args.stage2_steps or (args.steps if args.stage2 else 0),
                       args.stage2_hard_stop_seconds or (args.hard_stop_seconds if args.stage2 else 0)))
    records = []
    for i, (name, overrides, seconds, steps, hard_stop) in enumerate(stages):
        TRAIN.update(overrides)
        if args.train_overrides:
            TRAIN.update(json.loads(args.train_overrides))
        records.append(train_stage(name, model, ds, device, args, tokens_per_step, max_len, seconds, steps, hard_stop))
        if i + 1 < len(stages):  # keep each intermediate stage too, in case a later one fails
            model.eval()
            export(model, cfg, args.work, os.path.join(args.out, name), {"stages": records})
            print(f"exported {name} to {os.path.join(args.out, name)}", flush=True)

    model.eval()
    record = {"seed": SEED, "model": cfg, "init": args.init, "tokens_per_step": tokens_per_step,
              "stages": records, "tokens": sum(r["tokens"] for r in records),
              "train_seconds": round(sum(r["train_seconds"] for r in records), 1),
              "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
              "torch": torch.__version__, "data": ds.summary(), "parameters": num_params(model),
              "synth_docs": synth_docs, "chat_docs": chat_docs, "command": " ".join(sys.argv)}
    out_model = os.path.join(args.out, "model")
    export(model, cfg, args.work, out_model, record)
    print(f"exported to {out_model} at {time.time() - t_start:.1f}s", flush=True)

    # Evaluate the exported (bf16) weights in fp32.
    results = {}
    try:
        results.update(post_train_eval(cfg, args, out_model, device))
    except Exception as e:  # keep the export even if an evaluation breaks
        import traceback
        traceback.print_exc()
        results["eval_error"] = repr(e)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: v for k, v in results.items() if k != "reference_logits"}, indent=1))
    print(f"total {time.time() - t_start:.1f}s", flush=True)


def load_exported(cfg, out_model, device):
    import torch
    model = build_model(cfg)
    sd = {k: v.float() for k, v in load_safetensors(os.path.join(out_model, "model.safetensors")).items()}
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval()


def post_train_eval(cfg, args, out_model, device):
    import numpy as np
    import sentencepiece as spm
    import torch
    res = {}
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_model, "tokenizer.model"))
    model = load_exported(cfg, out_model, device)
    torch.backends.cuda.matmul.allow_tf32 = False
    with open(os.path.join(args.work, "natural_heldout.txt")) as f:
        nat = [l.strip() for l in f if l.strip()]
    with open(os.path.join(args.work, "synthetic_heldout.txt")) as f:
        syn = [l.strip() for l in f if l.strip()]
    n = 30 if args.tiny else len(nat)
    res["ppl_natural_heldout"], res["ppl_natural_heldout_tokens"] = perplexity(model, sp, nat[:n], device)
    res["ppl_synthetic_heldout"], res["ppl_synthetic_heldout_tokens"] = perplexity(model, sp, syn[:n], device)
    print(f"perplexity: natural {res['ppl_natural_heldout']:.3f}, synthetic {res['ppl_synthetic_heldout']:.3f}", flush=True)

    prompts = ["Once upon a time, there was a little", "The sun is", "A program is a list of"]
    samples = {}
    for p in prompts:
        ids = [sp.bos_id()] + sp.encode(p)
        samples[p] = sp.decode(greedy(model, ids, 20 if args.tiny else 60, device, {sp.eos_id()}))
    chat = Vocab(sp).chat_ids([("user", "Tell me a story.")]) + [sp.piece_to_id("<|assistant|>")]
    samples["<chat> Tell me a story."] = sp.decode(greedy(model, chat, 20 if args.tiny else 120, device,
                                                          {sp.eos_id(), sp.piece_to_id("<|end|>")}))
    res["samples"] = samples
    print(json.dumps(samples, indent=1), flush=True)

    lengths = [256, 512] if args.tiny else [1000, 2048, 4096, 8192, 16000]
    depths = [0.0, 0.5, 1.0] if args.tiny else [0.0, 0.25, 0.5, 0.75, 1.0]
    for kind in ["passkey", "kv"]:
        res[f"retrieval_{kind}"] = retrieval_grid(model, sp, device, lengths, depths, 1 if args.tiny else 3, kind)
        print(kind, res[f"retrieval_{kind}"], flush=True)

    # Reference logits for strata's CPU backend test: fp32, eager math, from the exported weights.
    rng = random.Random(SEED + 13)
    ref_prompts = [[sp.bos_id()] + sp.encode("Once upon a time, there was a little cat named Tom."),
                   [sp.bos_id()] + sp.encode(classic_prompt(sp, 300, 0.5, "48213", "passkey", rng)),
                   [rng.randrange(cfg["vocab_size"]) for _ in range(64)]]
    model_cpu = load_exported(cfg, out_model, "cpu")
    refs = []
    with torch.no_grad():
        for ids in ref_prompts:
            logits = model_cpu(torch.tensor([ids])).double()[0]
            refs.append({"ids": ids, "last_logits": logits[-1].tolist(),
                         "all_argmax": logits.argmax(-1).tolist(),
                         "rows_logits": {str(i): logits[i].tolist() for i in [0, len(ids) // 2]}})
    res["reference_logits"] = refs
    try:
        res.update(transformers_check(out_model, refs))
    except Exception as e:
        import traceback
        traceback.print_exc()
        res["transformers_error"] = repr(e)
    with open(os.path.join(out_model, "..", "reference_logits.json"), "w") as f:
        json.dump({"model": "models/default", "prompts": refs}, f)
    return res


def transformers_check(out_model, refs):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    res = {"transformers": transformers.__version__}
    model = AutoModelForCausalLM.from_pretrained(out_model, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    worst = 0.0
    hf_logits = []
    with torch.no_grad():
        for r in refs:
            logits = model(torch.tensor([r["ids"]])).logits[0].double()
            worst = max(worst, float((logits[-1] - torch.tensor(r["last_logits"], dtype=torch.float64)).abs().max()))
            hf_logits.append(logits[-1].tolist())
    res["transformers_vs_trainer_max_abs_logit_diff"] = worst
    for r, l in zip(refs, hf_logits):
        r["last_logits"] = l  # transformers' own logits are the reference strata compares with
    try:
        tok = AutoTokenizer.from_pretrained(out_model)
        res["transformers_tokenizer"] = type(tok).__name__
        text = "Once upon a time, there was a little cat named Tom."
        res["transformers_tokenizer_ids_match"] = tok(text)["input_ids"] == refs[0]["ids"]
        res["transformers_chat_render"] = tok.apply_chat_template([{"role": "user", "content": "Hi."}],
                                                                  tokenize=False, add_generation_prompt=True)
    except Exception as e:
        res["transformers_tokenizer_error"] = repr(e)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", required=True)
    t = sub.add_parser("train")
    t.add_argument("--work", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=0)
    t.add_argument("--train-seconds", type=float, default=420)
    t.add_argument("--hard-stop-seconds", type=float, default=0)
    t.add_argument("--tokens-per-step", type=int, default=0)
    t.add_argument("--max-len", type=int, default=0)
    t.add_argument("--processes", type=int, default=0)
    t.add_argument("--synth-docs", type=int, default=0)
    t.add_argument("--log-every", type=int, default=100)
    t.add_argument("--tiny", action="store_true")
    t.add_argument("--init", default="", help="start from this exported checkpoint folder")
    t.add_argument("--stage2", action="store_true", help="run only stage 2 (retrieval fine-tune, STAGE2), "
                   "usually with --init")
    t.add_argument("--stage2-seconds", type=float, default=0, help="after stage 1, run stage 2 for this long")
    t.add_argument("--stage2-steps", type=int, default=0)
    t.add_argument("--stage2-hard-stop-seconds", type=float, default=0)
    t.add_argument("--train-overrides", default="", help="JSON object of TRAIN settings to override for "
                   "every stage (e.g. a retrieval fine-tune's mix)")
    args = ap.parse_args()
    {"prepare": cmd_prepare, "train": cmd_train}[args.cmd](args)


if __name__ == "__main__":
    main()
