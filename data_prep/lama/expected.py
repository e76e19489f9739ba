"""Expected LAMA counts.

Totals come from the mirror's PROVENANCE.md.  The per-relation table was counted once from the staged
snapshot (lines per file) and pins it: a truncated or swapped file shows up as a mismatch.  Its columns
sum to the provenance totals; it is a regression pin, not an independent source.
"""

from __future__ import annotations

# The 41 LAMA T-REx relations, in the order of LAMA's relations.jsonl (which has 5 more: P102 P166
# P1923 P54 P69, never probed in T-REx LAMA).  Same set as OptiPrompt's LPAQA/AutoPrompt metainfo files.
TREX_RELATIONS: tuple[str, ...] = (
    "P19", "P20", "P279", "P37", "P413", "P449", "P47", "P138", "P364", "P463",
    "P101", "P106", "P527", "P530", "P176", "P27", "P407", "P30", "P178", "P1376",
    "P131", "P1412", "P108", "P136", "P17", "P39", "P264", "P276", "P937", "P140",
    "P1303", "P127", "P103", "P190", "P1001", "P31", "P495", "P159", "P36", "P740",
    "P361",
)

VARIANTS = ("original", "original_rob")  # LAMA-34k, LAMA-29k
SPLITS = ("train", "dev", "test")

# Files absent from every reachable snapshot (blobs > 4 MiB).  Test files are replaced by the
# mirror's reconstructed/ copies; train/dev are known gaps (never invented).
MISSING_TEST = ("P1001", "P131", "P1376", "P17", "P190", "P276", "P279", "P30", "P36", "P361", "P37", "P47", "P530")
MISSING_TRAIN = ("P190", "P47", "P530")
MISSING_DEV = ("P47",)

TOTALS = {
    "original": {"train": 26_772, "dev": 7_055, "test_real": 22_881, "test_reconstructed": 11_157, "test": 34_038},
    "original_rob": {"train": 25_167, "dev": 6_574, "test_real": 19_962, "test_reconstructed": 9_554, "test": 29_516},
}

# relation -> variant -> (train, dev, test); None = no file (known gap)
PER_RELATION: dict[str, dict[str, tuple[int | None, int | None, int]]] = {
    "P19": {"original": (800, 200, 944), "original_rob": (800, 200, 780)},
    "P20": {"original": (800, 200, 953), "original_rob": (800, 200, 817)},
    "P279": {"original": (800, 200, 964), "original_rob": (800, 200, 899)},
    "P37": {"original": (248, 62, 966), "original_rob": (239, 59, 900)},
    "P413": {"original": (800, 200, 952), "original_rob": (800, 200, 952)},
    "P449": {"original": (800, 200, 881), "original_rob": (800, 200, 808)},
    "P47": {"original": (None, None, 922), "original_rob": (None, None, 652)},
    "P138": {"original": (684, 171, 645), "original_rob": (540, 135, 468)},
    "P364": {"original": (800, 200, 856), "original_rob": (800, 200, 756)},
    "P463": {"original": (543, 135, 225), "original_rob": (489, 122, 203)},
    "P101": {"original": (691, 172, 696), "original_rob": (538, 134, 573)},
    "P106": {"original": (800, 200, 958), "original_rob": (800, 200, 821)},
    "P527": {"original": (800, 200, 976), "original_rob": (800, 200, 956)},
    "P530": {"original": (None, 185, 996), "original_rob": (None, 168, 950)},
    "P176": {"original": (800, 200, 982), "original_rob": (800, 200, 957)},
    "P27": {"original": (800, 200, 966), "original_rob": (800, 200, 958)},
    "P407": {"original": (800, 200, 877), "original_rob": (800, 200, 857)},
    "P30": {"original": (800, 200, 975), "original_rob": (800, 200, 959)},
    "P178": {"original": (448, 112, 592), "original_rob": (446, 111, 588)},
    "P1376": {"original": (248, 62, 234), "original_rob": (168, 42, 180)},
    "P131": {"original": (800, 200, 881), "original_rob": (800, 200, 775)},
    "P1412": {"original": (800, 200, 969), "original_rob": (800, 200, 924)},
    "P108": {"original": (300, 75, 383), "original_rob": (295, 73, 378)},
    "P136": {"original": (800, 200, 931), "original_rob": (800, 200, 859)},
    "P17": {"original": (800, 200, 930), "original_rob": (800, 200, 912)},
    "P39": {"original": (800, 200, 892), "original_rob": (800, 200, 485)},
    "P264": {"original": (800, 200, 429), "original_rob": (370, 92, 53)},
    "P276": {"original": (800, 200, 958), "original_rob": (800, 200, 765)},
    "P937": {"original": (800, 200, 954), "original_rob": (800, 200, 853)},
    "P140": {"original": (356, 89, 473), "original_rob": (336, 84, 434)},
    "P1303": {"original": (800, 200, 949), "original_rob": (800, 200, 513)},
    "P127": {"original": (438, 109, 687), "original_rob": (379, 94, 619)},
    "P103": {"original": (800, 200, 977), "original_rob": (800, 200, 919)},
    "P190": {"original": (None, 179, 995), "original_rob": (None, 119, 671)},
    "P1001": {"original": (800, 200, 701), "original_rob": (800, 200, 664)},
    "P31": {"original": (800, 200, 922), "original_rob": (800, 200, 882)},
    "P495": {"original": (800, 200, 909), "original_rob": (800, 200, 905)},
    "P159": {"original": (800, 200, 967), "original_rob": (800, 200, 801)},
    "P36": {"original": (416, 104, 703), "original_rob": (283, 70, 471)},
    "P740": {"original": (800, 200, 936), "original_rob": (800, 200, 843)},
    "P361": {"original": (800, 200, 932), "original_rob": (284, 71, 756)},
}

VOCAB = {
    "34k": {"bert-base-cased": 21_035, "bert-large-cased": 21_035, "roberta-large": 18_154, "gpt2-xl": 18_154},
    "29k": {"bert-base-cased": 18_154, "bert-large-cased": 18_154, "roberta-large": 18_154, "gpt2-xl": 18_154},
}
# Tokens after stripping each line (the files LAMA/OptiPrompt load the same way).  The provenance says
# 17,229 for the second file: that is `wc -l`, and the file has no final newline, so 17,230 tokens.
COMMON_VOCAB = {"common_vocab_cased": 21_018, "common_vocab_cased_be_ro_al": 17_230}

PROMPTS = {
    "lama": 41,
    "lpaqa": 41,
    "lpaqa_mine": 1_166,
    "lpaqa_paraphrase": 1_073,
    "lpaqa_manual_paraphrase": 1_018,
    "autoprompt_bert": 41,
    "autoprompt_roberta": 41,
    "pararel": 329,
}
PARAREL_MISSING = ("P31", "P527")  # ParaRel has no patterns for these two relations (upstream choice)

GOOGLE_RE = {"place_of_birth": 2_937, "date_of_birth": 1_825, "place_of_death": 766}
GOOGLE_RE_TEMPLATES = {
    "place_of_birth": "[X] was born in [Y] .",
    "date_of_birth": "[X] (born [Y]).",
    "place_of_death": "[X] died in [Y] .",
}

EVIDENCES = {"train": 72_575, "dev": 26_051, "test": 105_332, "total": 203_958}
