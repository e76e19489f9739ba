"""``python -m bench.speed.stage DEST``: copy what ``make bench`` reads into DEST, for a machine that
has the code but not ``data/`` (e.g. a GPU box): LAMA-34k test facts of every relation, the train
facts of the P-Tuning relation, the vocabulary lists, the prompt sets, and the tokenizer files
(no weights) of the tiny models whose tokenizers the paper shapes borrow. There, run
``BENCH_DATA_DIR=DEST/data python -m bench.speed --device cuda``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench.backbones.loading import load_model_config
from bench.lama.data import lama_root, relation_ids, variant_parts
from bench.models.tiny import repo_folder
from bench.paths import models_dir
from bench.speed.shapes import TOKENIZER_OF


def stage(dest: Path, relation: str = "P17") -> Path:
    data = dest / "data"
    lama = lama_root()
    folder, _ = variant_parts("lama34k")
    (data / "lama").mkdir(parents=True, exist_ok=True)
    shutil.copy2(lama / "relations.jsonl", data / "lama" / "relations.jsonl")
    for sub in ("vocab", "prompts"):
        shutil.copytree(lama / sub, data / "lama" / sub, dirs_exist_ok=True)
    for rel in relation_ids():
        for split in ("test", "train") if rel == relation else ("test",):
            source = lama / "facts" / folder / rel / f"{split}.jsonl"
            if source.is_file():
                target = data / "lama" / "facts" / folder / rel / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    for tiny in sorted(set(TOKENIZER_OF.values())):
        repo = repo_folder(load_model_config(tiny)["hub_id"], models_dir() / "hub")
        revision = (repo / "refs" / "main").read_text().strip()
        target = repo_folder(load_model_config(tiny)["hub_id"], data / "models" / "hub")
        (target / "refs").mkdir(parents=True, exist_ok=True)
        (target / "refs" / "main").write_text(revision)
        snapshot = target / "snapshots" / revision
        snapshot.mkdir(parents=True, exist_ok=True)
        for file in (repo / "snapshots" / revision).iterdir():
            if file.is_file() and not file.name.endswith((".safetensors", ".bin")):
                shutil.copy2(file, snapshot / file.name)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed.stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    print(f"staged {stage(args.dest)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
