"""How often replies use the character's catchphrases, with and without the logit bias.

Run: .venv/bin/python benchmarks/catchphrase_bias.py [--strengths 0,1,2,4] [--seeds 2]
For each sample character and each user prompt, one new session and one sampled reply
(default sampling settings, fixed seeds) per bias strength. Reported per strength:
- phrase rate: share of replies containing a whole catchphrase (case-insensitive);
- word rate: share of replies containing a distinctive catchphrase word (≥ 4 letters);
- spam rate: share of replies with a catchphrase more than twice (a sign the bias is too strong).
Strength 0 is the baseline (bias off) measured in the same run.
"""

from __future__ import annotations

import argparse
import re

from _common import temp_settings

from rolecraft.conversation import Engine

PROMPTS = [
    "Hello! Who are you?",
    "What do you do all day?",
    "I lost my way in the rain. Can you help me?",
    "Tell me something about yourself.",
    "What is your favourite thing in the world?",
    "Do you have any advice for a traveller?",
    "What happened to you yesterday?",
    "I brought you a gift.",
]


def _words(phrase: str) -> set[str]:
    return {w for w in re.findall(r"\w+", phrase.casefold()) if len(w) >= 4 or not w.isascii()}


def score(reply: str, catchphrases: list[str]) -> tuple[bool, bool, bool]:
    text = reply.casefold()
    counts = [text.count(p.casefold().rstrip("!.?。！？")) for p in catchphrases]
    words = set(re.findall(r"\w+", text))
    word_hit = any(_words(p) & words for p in catchphrases) or any(c > 0 for c in counts)
    return any(counts), word_hit, max(counts, default=0) > 2


def run(strength: float, seeds: int, characters: list[str]) -> dict[str, float]:
    engine = Engine(temp_settings(catchphrase_bias=strength, n_threads=2, max_tokens=60))
    hits = {"phrase": 0, "word": 0, "spam": 0, "n": 0}
    for char_id in characters:
        catchphrases = engine.character(char_id).catchphrases
        for seed in range(seeds):
            engine.settings.seed = seed
            for prompt in PROMPTS:
                phrase, word, spam = score(engine.new_session(char_id).send(prompt).text(), catchphrases)
                hits["phrase"] += phrase
                hits["word"] += word
                hits["spam"] += spam
                hits["n"] += 1
    engine.close()
    return {k: v / hits["n"] for k, v in hits.items() if k != "n"} | {"n": hits["n"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strengths", default="0,1,2,4")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--characters", default="ember,linyue,vellum")
    args = parser.parse_args()
    characters = args.characters.split(",")
    print(f"characters {characters}, {len(PROMPTS)} prompts x {args.seeds} seeds per strength")
    print(f"{'strength':>8} {'phrase rate':>12} {'word rate':>10} {'spam rate':>10} {'replies':>8}")
    for strength in (float(s) for s in args.strengths.split(",")):
        r = run(strength, args.seeds, characters)
        print(f"{strength:>8.1f} {r['phrase']:>12.1%} {r['word']:>10.1%} {r['spam']:>10.1%} {r['n']:>8}")


if __name__ == "__main__":
    main()
