"""Which of SillyTavern's 28 expressions a reply shows, offline and in about a millisecond.

The lexicon method scores each label from cue phrases (English words and
stage directions such as `*laughs*`; Chinese words), then lets sentence
sentiment break ties and fill in when no cue fires: VADER for English, SnowNLP
for Chinese. Punctuation adds a little (`?` → curiosity, `?!` → surprise).
Nothing matched and no clear sentiment → `neutral`. The scores are normalised to
sum to 1. The labels are GoEmotions' 27 emotions plus neutral, the set
SillyTavern's classifier uses, so sprites made for SillyTavern fit.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, NamedTuple

from rolecraft.errors import RolecraftError, missing_extra

LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "neutral", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise",
)
POSITIVE = frozenset({"admiration", "amusement", "approval", "caring", "desire", "excitement", "gratitude", "joy",
                      "love", "optimism", "pride", "relief"})
NEGATIVE = frozenset({"anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment", "fear",
                      "grief", "nervousness", "remorse", "sadness"})
NEUTRAL_BASE = 0.5

# English cue phrases; a trailing "*" matches any ending ("embarrass*" → embarrassed, embarrassing).
EN_CUES: dict[str, tuple[str, ...]] = {
    "admiration": ("impressive", "impressed", "remarkable", "incredible work", "brilliant", "magnificent", "talented",
                   "gifted", "skilled", "masterful", "admire*", "outstanding", "flawless", "extraordinary", "genius",
                   "marvel*", "you're so good", "truly great", "what a beauty", "respect you", "fine work"),
    "amusement": ("haha*", "hehe*", "lol", "lmao", "laugh*", "chuckle*", "giggle*", "funny", "hilarious", "amusing",
                  "you're kidding", "just kidding", "grins", "snicker*", "priceless", "cracks me up"),
    "anger": ("how dare", "furious", "angry", "rage", "enraged", "livid", "outraged", "hate you", "damn you",
              "curse you", "get out", "betray*", "infuriat*", "shut up", "growl*", "slams", "bastard", "enough!"),
    "annoyance": ("ugh", "annoy*", "irritat*", "on my nerves", "whatever", "not this again", "tired of", "fed up",
                  "bothering", "pest", "rolls her eyes", "rolls his eyes", "one more time", "stop tapping",
                  "seriously?", "*sighs*"),
    "approval": ("i agree", "agreed", "exactly right", "that's right", "correct", "good call", "good idea",
                 "good plan", "good choice", "sounds good", "well done", "fair enough", "makes sense", "sensible",
                 "my support", "approve", "that works", "nods"),
    "caring": ("are you hurt", "are you okay", "are you alright", "are you all right", "take care", "be careful",
               "let me help", "get some rest", "rest now", "bandage*", "you're safe",
               "don't worry", "eat something", "blanket", "look after", "here for you",
               "feel better"),
    "confusion": ("confus*", "don't understand", "i don't get it", "what do you mean", "huh", "wait, what",
                  "doesn't make any sense", "doesn't make sense", "makes no sense", "puzzled", "i'm lost",
                  "tilts her head", "tilts his head"),
    "curiosity": ("tell me more", "i wonder", "curious", "where did you", "how did you", "what was it like",
                  "what is that", "interesting", "intrigu*", "fascinating", "find out", "i'd love to know",
                  "what happened"),
    "desire": ("i want", "wish i could", "i wish", "crave*", "long to", "longing", "if only", "yearn*", "desire",
               "dream of", "give anything", "give my whole", "covet*", "hungry for", "more than anything"),
    "disappointment": ("disappoint*", "letdown", "let down", "what a shame", "that's a shame", "too bad",
                       "i thought you'd", "had hoped", "i guess not", "oh well",
                       "pity", "unfortunately"),
    "disapproval": ("shouldn't", "should not", "that's wrong", "not right", "wasn't right", "don't approve",
                    "disapprove", "bad idea", "reckless", "irresponsible", "unacceptable", "shame on you",
                    "i won't allow", "forbid*"),
    "disgust": ("disgust*", "gross", "ew", "eww", "yuck", "revolting", "vile", "nasty", "repulsive", "sickening",
                "rotten", "stench", "smell", "filthy", "nauseat*"),
    "embarrassment": ("embarrass*", "blush*", "awkward", "mortified", "how humiliating", "flustered", "oops",
                      "red-faced", "hides her face", "hides his face", "i can't believe i"),
    "excitement": ("can't wait", "cannot wait", "excit*", "thrill*", "let's go", "come on", "hooray", "yay",
                   "woohoo", "so cool", "eager", "right now!"),
    "fear": ("scared", "afraid", "terrified", "terrifying", "frightened", "fear", "horror", "run!", "hide",
             "help me", "something's moving", "in the dark", "danger*", "monster", "creepy", "panic*", "dread*",
             "shiver*"),
    "gratitude": ("thank you", "thanks", "grateful", "appreciate*", "thankful", "i owe you", "much obliged",
                  "bless you"),
    "grief": ("died", "dead", "death", "passed away", "gone forever", "she's gone", "he's gone", "funeral",
              "grave", "graves", "buried", "mourn*", "griev*", "grief"),
    "joy": ("happy", "glad", "joy", "joyful", "delighted", "wonderful", "best day", "lovely", "feel great",
            "cheerful", "smiles brightly", "beams"),
    "love": ("i love you", "loved you", "my love", "my dear", "darling", "sweetheart", "adore", "my heart is yours",
             "mean the world", "cherish*", "kisses", "beloved"),
    "nervousness": ("nervous*", "anxious", "anxiety", "worried", "what if", "shaking", "trembl*", "fidget*",
                    "uneasy", "jittery", "butterflies", "gulps", "stammer*"),
    "optimism": ("don't lose hope", "hopeful", "i'm sure", "will be fine", "will be okay", "will be better",
                 "work out", "we can win", "we can do", "believe we can", "bright side", "better luck",
                 "find a way", "going to be great", "looking up"),
    "pride": ("proud", "pride", "i forged", "i built", "i made this", "myself", "finest",
              "nobody makes better", "my masterpiece", "i did that", "accomplish*"),
    "realization": ("i get it now", "i see", "now i understand", "that's why", "all along", "so that's",
                    "i realise", "i realize", "it dawns", "makes sense now", "figured it out", "of course!"),
    "relief": ("phew", "relief", "relieved", "thank goodness", "thank god", "thank heavens", "safe now",
               "it's over", "made it", "exhales", "at last"),
    "remorse": ("sorry", "apologis*", "apologiz*", "my fault", "forgive me", "regret*", "shouldn't have",
                "feel terrible", "guilty", "i was wrong", "to blame"),
    "sadness": ("sad", "sadly", "lonely", "alone", "i miss", "cry", "crying", "tears",
                "heartbroken", "depressed", "gloomy", "heavy", "sorrow*", "unhappy", "weep*", "empty"),
    "surprise": ("whoa", "wow", "what?!", "really?!", "no way", "didn't expect", "unexpected", "oh my", "gasps",
                 "surprise*", "astonish*", "shocked"),
}

ZH_CUES: dict[str, tuple[str, ...]] = {
    "admiration": ("佩服", "厉害", "了不起", "真棒", "太棒", "钦佩", "敬佩", "赞叹", "出色", "优秀"),
    "amusement": ("哈哈", "呵呵", "嘻嘻", "好笑", "搞笑", "笑死", "逗"),
    "anger": ("气死", "生气", "愤怒", "滚", "竟敢", "可恶", "混蛋", "该死", "恼火"),
    "annoyance": ("真烦", "烦人", "烦死", "讨厌", "又来了", "无语", "别再", "啰嗦", "不耐烦"),
    "approval": ("同意", "好主意", "没错", "就这么办", "赞成", "支持", "有道理", "说得对"),
    "caring": ("受伤", "小心", "照顾", "着凉", "休息", "别担心", "包扎", "保重", "没事吧", "我陪你"),
    "confusion": ("不明白", "不太明白", "不懂", "不太懂", "什么意思", "糊涂", "搞不懂", "困惑", "怎么回事"),
    "curiosity": ("好奇", "告诉我", "哪里来", "为什么", "想知道", "有意思"),
    "desire": ("想要", "渴望", "梦想", "真想", "好想", "要是能", "盼望", "想得到"),
    "disappointment": ("失望", "可惜", "白费", "还以为", "本以为", "遗憾"),
    "disapproval": ("不应该", "不对", "不行", "不该", "反对", "不可以", "太过分", "不能这样"),
    "disgust": ("恶心", "脏", "臭", "作呕", "反胃", "呕"),
    "embarrassment": ("不好意思", "尴尬", "害羞", "脸红", "丢人", "难为情", "丢脸"),
    "excitement": ("激动", "兴奋", "等不及", "迫不及待", "好期待", "出发"),
    "fear": ("害怕", "恐惧", "可怕", "吓", "救命", "快跑", "危险"),
    "gratitude": ("谢谢", "感谢", "感激", "多亏", "多谢", "感恩"),
    "grief": ("去世", "死了", "哀悼", "葬", "悲痛", "坟", "逝去", "永远离开"),
    "joy": ("开心", "高兴", "快乐", "幸福", "真好", "愉快", "喜悦"),
    "love": ("我爱你", "爱你", "爱上", "喜欢你", "亲爱的", "心上人"),
    "nervousness": ("紧张", "不安", "担心", "忐忑", "发抖", "万一", "慌"),
    "optimism": ("一定会", "相信", "会好的", "别灰心", "希望", "能做到", "加油"),
    "pride": ("骄傲", "自豪", "亲手", "得意"),
    "realization": ("原来", "明白了", "终于懂", "难怪", "怪不得", "恍然大悟"),
    "relief": ("松了一口气", "还好", "幸好", "总算", "放心了"),
    "remorse": ("对不起", "抱歉", "我的错", "不该", "后悔", "原谅我", "内疚"),
    "sadness": ("难过", "伤心", "孤单", "寂寞", "哭", "眼泪", "悲伤", "心里难受"),
    "surprise": ("天哪", "竟然", "没想到", "真的吗", "惊讶", "吃惊", "居然"),
}

_NEGATORS = re.compile(r"\b(not|never|no|don't|doesn't|didn't|isn't|wasn't|won't|can't)\s+(\w+\s+)?$")
_STRONG = 1.5  # cues written as stage directions (*laughs*) or exclamations


class Expression(NamedTuple):
    """The chosen label and a probability-like score for every label."""

    label: str
    scores: dict[str, float]


def _pattern(cue: str) -> re.Pattern[str]:
    stem = cue.endswith("*") and not cue.startswith("*")
    body = re.escape(cue.rstrip("*") if stem else cue)
    left = r"(?<![\w'])" if cue[0].isalnum() else ""
    right = r"\w*" if stem else (r"(?![\w'])" if cue[-1].isalnum() else "")
    return re.compile(left + body + right, re.IGNORECASE)


@cache
def _english_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((label, _pattern(cue)) for label, cues in EN_CUES.items() for cue in cues)


def detect_language(text: str) -> str:
    """'zh' when the text has Chinese characters, else 'en'."""
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


def cue_scores(text: str, lang: str) -> dict[str, float]:
    """Cue weight per label; English cues after a negation ("not happy") do not count."""
    scores: dict[str, float] = {}
    for label, pattern in _english_patterns():
        for match in pattern.finditer(text):
            if label not in {"caring", "optimism", "disapproval"} and _NEGATORS.search(text[: match.start()]):
                continue
            weight = _STRONG if match.group(0).startswith("*") or match.group(0).endswith("!") else 1.0
            scores[label] = scores.get(label, 0.0) + weight
    if lang == "zh":
        for label, cues in ZH_CUES.items():
            hits = sum(text.count(cue) for cue in cues)
            if hits:
                scores[label] = scores.get(label, 0.0) + hits
    return scores


@cache
def _vader() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise missing_extra("vaderSentiment", "expressions") from exc
    return SentimentIntensityAnalyzer()


def sentiment(text: str, lang: str) -> float:
    """Polarity from -1 (negative) to 1 (positive): VADER compound (en) or SnowNLP rescaled (zh)."""
    if lang == "zh":
        try:
            from snownlp import SnowNLP
        except ImportError as exc:
            raise missing_extra("snownlp", "expressions") from exc
        return (float(SnowNLP(text).sentiments) - 0.5) * 2.0
    return float(_vader().polarity_scores(text)["compound"])


def _sentiment_fill(scores: dict[str, float], polarity: float) -> None:
    """With no cues, clear sentiment still says something: joy/approval or sadness/disappointment."""
    if polarity >= 0.5:
        scores.update(joy=0.6, approval=0.3)
    elif polarity >= 0.3:
        scores["approval"] = 0.55
    elif polarity <= -0.5:
        scores.update(sadness=0.55, annoyance=0.35)
    elif polarity <= -0.3:
        scores["disappointment"] = 0.55


def _punctuation(scores: dict[str, float], text: str, polarity: float) -> None:
    stripped = text.strip()
    if "?!" in stripped or "!?" in stripped or "？！" in stripped:
        scores["surprise"] = scores.get("surprise", 0.0) + 0.5
    elif stripped.endswith(("?", "？")):
        scores["curiosity"] = scores.get("curiosity", 0.0) + 0.3
        scores["confusion"] = scores.get("confusion", 0.0) + 0.1
    if stripped.endswith(("!", "！")) and not scores:
        scores["excitement" if polarity >= 0 else "anger"] = 0.55


def classify(text: str, lang: str | None = None) -> Expression:
    """The expression label for a reply, with normalised scores over all 28 labels."""
    if not isinstance(text, str):
        raise RolecraftError("expression text must be a string", code="invalid_request", param="text")
    lang = lang or detect_language(text)
    polarity = sentiment(text, lang) if text.strip() else 0.0
    scores = cue_scores(text, lang)
    for label in scores:
        agreement = polarity if label in POSITIVE else -polarity if label in NEGATIVE else 0.0
        scores[label] += 0.25 * agreement
    if not scores:
        _sentiment_fill(scores, polarity)
    _punctuation(scores, text, polarity)
    full = {label: max(0.0, scores.get(label, 0.0)) for label in LABELS}
    full["neutral"] = max(full["neutral"], NEUTRAL_BASE)
    total = sum(full.values())
    normalised = {label: round(value / total, 4) for label, value in full.items()}
    best = max(LABELS, key=lambda label: (full[label], label == "neutral"))
    return Expression(best, normalised)
