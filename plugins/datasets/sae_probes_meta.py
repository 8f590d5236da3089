"""What the sae-probes cards say about each task family: category, upstream citation, what is probed.

Author-written metadata for the card generator (`sae_probes_cards`); no text of the tasks. A family
is found from the task's number in the wheel (`<n>_<tag>.csv.zst`); the one-vs-rest files that
sae-probes cut from its multiclass tasks (numbers 114-156) belong to their parent's family.
"""
from __future__ import annotations

from dataclasses import dataclass

PACKAGE_CITATION = ("Kantamneni, Engels, Rajamanoharan, Tegmark and Nanda (2025), Are Sparse Autoencoders "
                    "Useful? A Case Study in Sparse Probing, ICML 2025; the task files of the sae-probes 0.4.2 "
                    "package (MIT)")
SPACE_TIME = "Gurnee and Tegmark (2024), Language Models Represent Space and Time, ICLR 2024 (its entity datasets)"
HAYSTACK = ("Gurnee, Nanda, Pauly, Harvey, Troitskii and Bertsimas (2023), Finding Neurons in a Haystack: Case "
            "Studies with Sparse Probing, TMLR")
GLUE = ("Wang, Singh, Michael, Hill, Levy and Bowman (2019), GLUE: A Multi-Task Benchmark and Analysis Platform "
        "for Natural Language Understanding, ICLR 2019")
SAEBENCH = ("Karvonen et al. (2025), SAEBench: A Comprehensive Benchmark for Sparse Autoencoders in Language "
            "Model Interpretability (its sparse-probing sets)")


@dataclass(frozen=True)
class Family:
    category: str
    citation: str   # the upstream data, as far as the package's table (and the data) say
    prompt: str     # what a prompt is
    tags: tuple[str, ...] = ()
    responsible_use: str | None = None


SAFETY_USE = ("For research on how language models represent {what} (locating the units or directions that "
              "carry it, comparing probing methods). The labels are one annotation effort's judgements on "
              "texts collected online; they carry that effort's biases (dialect and identity terms are known "
              "to be over-flagged in such data). Do not use the data or probes trained on it to moderate, "
              "rank or judge people or their writing, and do not generate or spread the texts.")

FAMILIES: dict[str, Family] = {
    "hist_fig": Family("factual", SPACE_TIME, "the name of a historical figure", ("people", "space-time")),
    "nyc": Family("factual", SPACE_TIME, "the name of a place in New York City", ("places", "space-time")),
    "us": Family("factual", SPACE_TIME, "the name of a US city or place", ("places", "space-time")),
    "world": Family("factual", SPACE_TIME, "the name of a place in the world", ("places", "space-time")),
    "headline": Family("topic", SPACE_TIME, "a New York Times headline", ("news", "space-time")),
    "art": Family("factual", SPACE_TIME, "the title and creator of a book, song or film", ("art", "space-time")),
    "sciq": Family("reasoning", "Welbl, Liu and Gardner (2017), Crowdsourcing Multiple Choice Science Questions, "
                   "W-NUT 2017 (SciQ)", "a science question with a candidate answer", ("qa", "truth")),
    "arith": Family("reasoning", "the allenai basic_arithmetic set, as the package's table links it (its Source "
                    "column gives arXiv:1707.06209, the SciQ paper)", "an arithmetic question (with options)",
                    ("arithmetic",)),
    "truthqa": Family("reasoning", "Lin, Hilton and Evans (2022), TruthfulQA: Measuring How Models Mimic Human "
                      "Falsehoods, ACL 2022", "a question with a candidate answer", ("qa", "truth")),
    "mctaco": Family("reasoning", "Zhou, Khashabi, Ning and Roth (2019), \"Going on a vacation\" takes longer than "
                     "\"Going for a walk\": A Study of Temporal Commonsense Understanding, EMNLP 2019 (MC-TACO)",
                     "a temporal commonsense question (with a candidate answer)", ("qa", "temporal")),
    "piqa": Family("reasoning", "Bisk, Zellers, Le Bras, Gao and Choi (2020), PIQA: Reasoning about Physical "
                   "Commonsense in Natural Language, AAAI 2020 (the package's table gives 'Rogers et al. [2020]')",
                   "a goal with two candidate solutions", ("qa", "physical")),
    "quail": Family("reasoning", "Rogers, Kovaleva, Downey and Rumshisky (2020), Getting Closer to AI Complete "
                    "Question Answering: A Set of Prerequisite Real Tasks, AAAI 2020 (QuAIL)",
                    "a reading-comprehension question (with its context and options)", ("qa", "reading")),
    "quartz": Family("reasoning", "Tafjord, Gardner, Lin and Clark (2019), QuaRTz: An Open-Domain Dataset of "
                     "Qualitative Relationship Questions, EMNLP 2019", "a qualitative-relationship question with "
                     "two options", ("qa",)),
    "ethics": Family("reasoning", "Hendrycks, Burns, Basart, Critch, Li, Song and Steinhardt (2021), Aligning AI "
                     "With Shared Human Values, ICLR 2021 (ETHICS)", "a short scenario from ETHICS",
                     ("ethics", "moral")),
    "csqa2": Family("reasoning", "Talmor, Yoran, Le Bras, Bhagavatula, Goldberg, Choi and Berant (2021), "
                    "CommonsenseQA 2.0: Exposing the Limits of AI through Gamification, NeurIPS 2021 Datasets and "
                    "Benchmarks", "a commonsense statement or question", ("qa", "truth")),
    "openbookqa": Family("reasoning", "Mihaylov, Clark, Khot and Sabharwal (2018), Can a Suit of Armor Conduct "
                         "Electricity? A New Dataset for Open Book Question Answering, EMNLP 2018",
                         "an elementary science question with options", ("qa",)),
    "wikidata": Family("factual", HAYSTACK + " (its Wikidata person features)",
                       "a passage about a person with a Wikidata entry", ("people", "wikidata")),
    "phrase": Family("syntax", HAYSTACK + " (its compound-word features, on The Pile)",
                     "a text span ending in the second word of a two-word phrase, or in that word elsewhere",
                     ("compounds", "multiword")),
    "social_iqa": Family("reasoning", "Sap, Rashkin, Chen, Le Bras and Choi (2019), Social IQa: Commonsense "
                         "Reasoning about Social Interactions, EMNLP 2019", "a social situation, a question and "
                         "answers", ("qa", "social")),
    "glue": Family("reasoning", GLUE, "a GLUE example (one sentence, or a pair joined by ' | ')", ("glue",)),
    "ai_gen": Family("topic", "an AI-versus-human text collection the package's table names 'gpt 2 outputs' "
                     "(source 'GPT 2')", "a passage written by a person or generated by a model",
                     ("machine-text",)),
    "toxic": Family("safety", "the package's table cites 'Cjadams et al. [2017]' (the Jigsaw toxic comment data) "
                    "and links lmsys's ToxicChat (Lin et al. 2023)", "a user message", ("toxicity",),
                    SAFETY_USE.format(what="toxicity")),
    "spam": Family("safety", "the SMS Spam Collection (Almeida, Gomez Hidalgo and Yamakami 2011), as a Kaggle "
                   "'spam text message classification' set the package's table names", "a text message",
                   ("spam",), SAFETY_USE.format(what="spam")),
    "kaggle": Family("topic", "a Kaggle dataset, named in the package's table as below", "a document", ("kaggle",)),
    "fake_news": Family("safety", "the Kaggle 'fake and real news' dataset (Ahmed, Traore and Saad 2017), as "
                        "the package's table names it", "a news article", ("misinformation",),
                        SAFETY_USE.format(what="whether a news text comes from a reliable outlet")),
    "clickbait": Family("topic", "a clickbait headline set (Chakraborty et al. 2016, Stop Clickbait) as the "
                        "package's table names it ('clickbait news')", "a headline", ("news", "clickbait")),
    "hate": Family("safety", "Davidson, Warmsley, Macy and Weber (2017), Automated Hate Speech Detection and the "
                   "Problem of Offensive Language, ICWSM 2017", "a tweet", ("hate-speech",),
                   SAFETY_USE.format(what="hate speech and offensive language")),
    "athlete": Family("factual", "athlete names collected by the sae-probes authors (the package's table gives no "
                      "source)", "the name of an athlete", ("people", "sports")),
    "human_gpt3": Family("topic", "the Detection-Of-Machine-Generated-Text data (Oza et al.), as the package's "
                         "table links it ('human vs gpt3 text')", "a passage written by a person or by GPT-3",
                         ("machine-text",)),
    "reviews": Family("topic", "the package's table cites McAuley and Leskovec (2013), Hidden factors and hidden "
                      "topics: understanding rating dimensions with review text, RecSys 2013, and links the "
                      "Yelp, Amazon and Rotten Tomatoes (Pang and Lee 2005) review sets", "a user review",
                      ("sentiment", "reviews")),
    "saebench": Family("topic", SAEBENCH, "a text from SAEBench's sparse-probing sets", ("saebench",)),
}

# Numbers of the wheel's task files -> family. Tasks 114-156 are one-vs-rest cuts of multiclass tasks.
_RANGES: tuple[tuple[int, int, str], ...] = (
    (2, 7, "hist_fig"), (8, 10, "nyc"), (11, 16, "us"), (17, 20, "world"), (21, 26, "headline"), (27, 30, "art"),
    (36, 36, "sciq"), (37, 40, "arith"), (41, 41, "truthqa"), (42, 43, "mctaco"), (44, 44, "piqa"),
    (45, 46, "quail"), (47, 47, "quartz"), (48, 52, "ethics"), (54, 54, "csqa2"), (55, 55, "openbookqa"),
    (56, 64, "wikidata"), (65, 85, "phrase"), (86, 86, "social_iqa"), (87, 93, "glue"), (94, 94, "ai_gen"),
    (95, 95, "toxic"), (96, 96, "spam"), (97, 99, "kaggle"), (100, 100, "fake_news"), (101, 103, "kaggle"),
    (105, 105, "clickbait"), (106, 107, "hate"), (108, 109, "athlete"), (110, 110, "human_gpt3"),
    (111, 113, "reviews"), (114, 116, "nyc"), (117, 122, "us"), (123, 125, "world"), (126, 128, "art"),
    (129, 129, "arith"), (130, 132, "mctaco"), (133, 135, "quail"), (136, 138, "glue"), (139, 153, "kaggle"),
    (154, 156, "athlete"), (157, 163, "saebench"),
)

# Tasks whose category differs from their family's.
CATEGORY_OVERRIDES: dict[int, str] = {
    25: "factual",    # a headline's year: when, not what about
    49: "lexical",    # ETHICS 'is short': the length of the scenario
    87: "syntax",     # CoLA: grammatical acceptability
    92: "topic",      # SST-2: sentiment
    158: "code", 159: "code", 160: "code",  # SAEBench's GitHub code: which language
}

# Written reasons for gates that a task fails by design (checked by `probebank validate`).
_SAEBENCH_NEWS = ("By the data's design: this SAEBench set's negatives include source-code files, far longer than "
                  "its AG News articles and ending in other tokens, so text length, the last token's position and "
                  "the last token itself separate the classes; read probe F1 against these shortcuts.")
_ARITH_NEAR = ("By design: the expressions differ only in their operators and digits' order, which the "
               "near-duplicate comparison (letters and digits only) drops; exact repeats are removed.")

_PLACE_TOKEN = ("By the data's design: many place names end in the name of their state or region (California, "
                "Queensland, Wales), so the last token alone nearly gives the country on the full set (the "
                "validate sample stays under 0.9); read probe F1 against the token-identity baseline.")

# Written reasons for gates that a task fails by design (checked by `probebank validate`, and by
# `probebank catalog` on the full sets).
WAIVERS: dict[int, dict[str, str]] = {
    17: {"token_identity": _PLACE_TOKEN},
    124: {"token_identity": _PLACE_TOKEN},
    105: {"token_identity": "By the data's construction: the clickbait headlines end in an exclamation or a question "
                            "('Revealed!', 'It?'), the factual ones in a topic word, so the last token nearly gives "
                            "the label away; read probe F1 against the token-identity baseline."},
    39: {"near_duplicates": _ARITH_NEAR},
    40: {"near_duplicates": _ARITH_NEAR},
    49: {"length": "The label is whether the ETHICS scenario is short: by design a function of the text's length; "
                   "read probe F1 against the length shortcut.",
         "position": "The label is whether the ETHICS scenario is short, and the target is its last token: its "
                     "position is the text's length in tokens by design."},
    100: {"token_identity": "By the data's construction: the articles labelled fake come from a few sites whose "
                            "sign-offs end the text, so the last token nearly gives the label away; read probe F1 "
                            "against the token-identity baseline."},
    161: {"token_identity": _SAEBENCH_NEWS, "position": _SAEBENCH_NEWS, "length": _SAEBENCH_NEWS},
    162: {"token_identity": _SAEBENCH_NEWS, "position": _SAEBENCH_NEWS, "length": _SAEBENCH_NEWS},
    163: {"token_identity": _SAEBENCH_NEWS, "position": _SAEBENCH_NEWS, "length": _SAEBENCH_NEWS},
}


def family_of(number: int) -> Family:
    for lo, hi, key in _RANGES:
        if lo <= number <= hi:
            return FAMILIES[key]
    raise KeyError(f"sae-probes task {number} has no family: add its number to sae_probes_meta._RANGES")


def category_of(number: int) -> str:
    return CATEGORY_OVERRIDES.get(number, family_of(number).category)
