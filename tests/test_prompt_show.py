"""The show command: token-by-token listing with roles, key=value words, template configs."""

from __future__ import annotations

import json

from test_prompt_tokenizers import roberta, t5_hand

from bench.prompts.show import main, parse_args


def test_show_lists_tokens_with_roles(capsys):
    code = main(["--template", "[P:1] [X] is located in [Y] [A:.]", "--field", "x=Paris", "--family", "mlm",
                 "--target", "France"], tokenizer=roberta())
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "template: '[P:1] [X] is located in [Y] [A:.]'  (--template)"
    assert lines[1] == "fields: {'x': 'Paris'}  family: mlm  tokenizer: RobertaTokenizer (byte_bpe)"
    assert lines[3:] == [
        "   0        0  '<s>'",
        "   1        3  '<unk>'              SOFT",
        "   2     6346  'ĠParis'",
        "   3      322  'Ġis'",
        "   4     5144  'Ġlocated'",
        "   5      291  'Ġin'",
        "   6    50261  '<mask>'             TARGET (mask)",
        "   7      768  'Ġ.'                 ANCHOR",
        "   8        2  '</s>'",
        "target 'France': ids [4885] tokens ['ĠFrance']",
    ]


def test_show_seq2seq_decoder(capsys):
    assert main(["--template", "[X] is in [Y] .", "x=Paris", "family=seq2seq"], tokenizer=t5_hand()) == 0
    out = capsys.readouterr().out
    assert "   3      100  '<extra_id_0>'       SENTINEL\n" in out
    assert out.endswith("decoder:\n   0        0  '<pad>'\n   1      100  '<extra_id_0>'       TARGET\n")


def test_show_reports_template_errors(capsys):
    assert main(["--template", "[X] is in [Z] .", "x=Paris"], tokenizer=roberta()) == 2
    assert "column 11: unknown slot [Z]" in capsys.readouterr().err


def test_key_value_words_map_to_options_and_fields():
    args = parse_args(["template=lama", "model=tiny-bert", "relation=P17", "rank=2", "x=Paris", "--field", "y=z"])
    assert (args.template_config, args.model, args.relation, args.rank) == ("lama", "tiny-bert", "P17", 2)
    assert args.field == ["y=z", "x=Paris"]


def test_show_template_config_with_sample_subject(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "lama" / "prompts"
    folder.mkdir(parents=True)
    row = {"relation": "P17", "template": "[X] is located in [Y] .", "rank": 0, "source": "t"}
    (folder / "lama.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    assert main(["template=lama", "relation=P17", "family=mlm"], tokenizer=roberta()) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "template: '[X] is located in [Y] .'  (lama:P17:r0)"
    assert out[3:5] == ["   0        0  '<s>'", "   1    40317  'Paris'"]  # no facts prepared: "Paris"
