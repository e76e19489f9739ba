"""Print a rendered prompt token by token: index, id, token (repr, spaces visible), role.

    python -m bench.prompts.show --template "[X] is located in [Y] ." --model tiny-gpt2 --field x=Paris
    python -m bench.prompts.show template=lama model=tiny-bert relation=P17
    python -m bench.prompts.show --template "[P:3] [X] [P:3] [Y]" --tokenizer path/to/tokenizer --family clm

``key=value`` words work like the options (template, model, relation, rank, family, tokenizer,
target); any other key is a field (``x=Paris``). A LAMA template with no ``x`` given uses the
relation's first dev fact when data/lama is prepared, else "Paris".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from bench.errors import BenchError, ConfigError
from bench.paths import REPO_ROOT
from bench.prompts import templates_for
from bench.prompts.pieces import tokenizer_info
from bench.prompts.render import FAMILIES, RenderedPrompt, render
from bench.prompts.template import Template, parse_template
from bench.prompts.verbalizer import target_token_ids

OPTION_KEYS = {"template": "template_config", "model": "model", "relation": "relation", "rank": "rank",
               "family": "family", "tokenizer": "tokenizer", "target": "target"}


def format_prompt(prompt: RenderedPrompt, tokenizer) -> str:
    """One line per input token; roles: TARGET (mask / scored position), SOFT, ANCHOR."""
    lines = []
    tokens = prompt.tokens(tokenizer)
    in_decoder = prompt.decoder_input_ids is not None
    for i, (tid, tok) in enumerate(zip(prompt.input_ids, tokens, strict=True)):
        role = "SOFT" if i in prompt.soft_positions else "ANCHOR" if i in prompt.anchor_positions else ""
        if not in_decoder and i in prompt.target_positions:
            role = "TARGET" if tid != tokenizer.mask_token_id else "TARGET (mask)"
        if in_decoder and tid == prompt.decoder_input_ids[-1]:
            role = "SENTINEL"
        lines.append(f"{i:>4}  {tid:>7}  {tok!r:<20} {role}".rstrip())
    if in_decoder:
        lines.append("decoder:")
        dec = tokenizer.convert_ids_to_tokens(prompt.decoder_input_ids)
        for i, (tid, tok) in enumerate(zip(prompt.decoder_input_ids, dec, strict=True)):
            role = "TARGET" if i in prompt.target_positions else ""
            lines.append(f"{i:>4}  {tid:>7}  {tok!r:<20} {role}".rstrip())
    return "\n".join(lines)


def load_tokenizer(model: str | None, tokenizer_dir: str | None):
    """The tokenizer (and the model's family, if known) for --model NAME or --tokenizer DIR."""
    if tokenizer_dir:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tokenizer_dir), None
    if not model:
        raise ConfigError("pass --model NAME (conf/model/NAME.yaml) or --tokenizer DIR")
    from bench.backbones.loading import load_backbone, load_model_config

    cfg = load_model_config(model)
    backbone = load_backbone(cfg, device="cpu", dtype="fp32")
    return backbone.tokenizer, cfg.get("family")


def _template(args: argparse.Namespace, family: str) -> Template:
    if args.template:
        return parse_template(args.template, name="--template")
    if not args.template_config:
        raise ConfigError("pass --template TEXT or --template-config NAME (conf/template/NAME.yaml)")
    path = REPO_ROOT / "conf" / "template" / f"{args.template_config}.yaml"
    if not path.is_file():
        raise ConfigError(f"no template config {path}")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    if args.rank is not None:
        cfg["rank"] = int(args.rank)
    found = templates_for(cfg, relation=args.relation, family=family)
    if not found:
        raise ConfigError(f"template config {args.template_config!r} has no template for relation {args.relation!r}")
    return found[0]


def _sample_subject(relation: str | None) -> str:
    if relation:
        try:
            from bench.lama.data import load_facts

            facts = load_facts(relation, "dev", "lama34k")
            if facts:
                return facts[0].sub_label
        except BenchError:
            pass
    return "Paris"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.prompts.show", description=__doc__.split("\n")[0])
    parser.add_argument("--template", help="template text, e.g. '[X] is located in [Y] .'")
    parser.add_argument("--template-config", help="conf/template/NAME.yaml")
    parser.add_argument("--relation", help="LAMA relation for per-relation template configs, e.g. P17")
    parser.add_argument("--rank", type=int, help="prompt rank within a prompt set (overrides the config)")
    parser.add_argument("--model", help="conf/model/NAME.yaml; its tokenizer and family")
    parser.add_argument("--tokenizer", help="a tokenizer directory (instead of --model)")
    parser.add_argument("--family", choices=FAMILIES, help="mlm | clm | seq2seq (default: the model's, else mlm)")
    parser.add_argument("--field", action="append", default=[], help="k=v field value (repeatable)")
    parser.add_argument("--target", help="also show this target word's tokens")
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--num-target-tokens", type=int, default=1)
    parser.add_argument("words", nargs="*", help="key=value words (template=lama model=tiny-bert relation=P17 x=Paris)")
    args = parser.parse_args(list(argv))
    for word in args.words:
        key, sep, value = word.partition("=")
        if not sep:
            parser.error(f"expected key=value, got {word!r}")
        if key in OPTION_KEYS:
            setattr(args, OPTION_KEYS[key], int(value) if key == "rank" else value)
        else:
            args.field.append(word)
    return args


def main(argv: Sequence[str] | None = None, tokenizer=None) -> int:
    """CLI entry; ``tokenizer`` may be passed directly (tests)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        model_family = None
        if tokenizer is None:
            tokenizer, model_family = load_tokenizer(args.model, args.tokenizer)
        family = args.family or model_family or "mlm"
        template = _template(args, family)
        fields = dict(f.partition("=")[::2] for f in args.field)
        if "x" in template.fields and "x" not in fields:
            fields["x"] = _sample_subject(args.relation)
        prompt = render(template, fields, tokenizer, family, max_length=args.max_length,
                        num_target_tokens=args.num_target_tokens)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = tokenizer_info(tokenizer)
    print(f"template: {template.text!r}" + (f"  ({template.name})" if template.name else ""))
    print(f"fields: {fields}  family: {family}  tokenizer: {type(tokenizer).__name__} ({info.kind})")
    print(f"target_prefix_space: {prompt.target_prefix_space}")
    print(format_prompt(prompt, tokenizer))
    if args.target:
        ids = target_token_ids(args.target, tokenizer, prefix_space=prompt.target_prefix_space)
        print(f"target {args.target!r}: ids {ids} tokens {tokenizer.convert_ids_to_tokens(ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

