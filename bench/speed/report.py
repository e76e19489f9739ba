"""The text table ``make bench`` prints: every figure with its ratio to the baseline of the same run."""

from __future__ import annotations

MIB = 2**20


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB"


def _agree(row: dict, total: int) -> str:
    if "mismatches" in row:
        if row["mismatches"]:
            return f"DIFFERENT ({len(row['mismatches'])} of {row.get('n_facts', total)})"
        ties = f", {row['n_ties']} ties within tolerance" if row["n_ties"] else ""
        return f"identical{ties}"
    if "identical" in row:
        return "identical" if row["identical"] else "DIFFERENT"
    if "n_different" in row:
        return f"{row['n_different']} of {total} differ from fp32; P@1 {100 * row['p_at_1']:.1f}"
    return ""


LABELS = {"ours": "ours: suite predict, token budget {budget}",
          "reference": "reference way: per relation, batch {ref_batch}, full logits",
          "ours_fixed_batch": "ours with the runs' fixed batch of {runs_batch}",
          "ours_eager_attention": "ours, eager attention instead of SDPA",
          "ours_tf32": "ours, TF32 matmuls",
          "ours_bf16": "ours, bf16 autocast",
          "one_fact_loop": "plain one-fact loop (full logits)"}


def lama_table(name: str, entry: dict, peaks: dict) -> list[str]:
    lama = entry["lama"]
    peaks = lama.get("peaks") or peaks  # measured in the same rounds as the rows
    rows, ref = lama["rows"], lama["rows"]["reference"]["seconds"]
    lines = [f"{name} ({entry['params'] / 1e6:,.0f}M parameters; {lama['n_facts']} facts over {lama['n_relations']} "
             f"relations, {lama['real_tokens']:,} real tokens, {lama['n_candidates']:,} candidates)",
             "  matmul peak in the same rounds: " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()),
             f"  {'row':58s} {'facts/s':>9s} {'x reference':>11s} {'GFLOP/s':>8s} {'of peak':>8s}  predictions"]
    for key, row in rows.items():
        label = LABELS[key].format(**lama)
        if key == "one_fact_loop":
            label += f" ({row['n_facts']} facts)"
        peak = peaks["bf16"] if key == "ours_bf16" else peaks.get("tf32") if key == "ours_tf32" else peaks["fp32"]
        which = "bf16" if key == "ours_bf16" else "tf32" if key == "ours_tf32" else "fp32"
        speed = ref / row["seconds"] * (row.get("n_facts", lama["n_facts"]) / lama["n_facts"])
        lines.append(f"  {label:58s} {row['facts_per_s']:9,.1f} {speed:10.2f}x {row['useful_flop_per_s'] / 1e9:8,.0f} "
                     f"{100 * row['useful_flop_per_s'] / peak:5.0f}% {which}  {_agree(row, lama['n_facts'])}")
    one = rows.get("one_fact_loop")
    if one:
        lines.append(f"  ours / plain one-fact loop: {rows['ours']['facts_per_s'] / one['facts_per_s']:.1f}x")
    lines.append(f"  tokens through the model (padding included): ours {rows['ours']['tokens']:,}, reference "
                 f"{rows['reference']['tokens']:,}, runs' fixed batch {rows['ours_fixed_batch']['tokens']:,}; "
                 f"useful FLOPs: body on real tokens + attention + LM head at the target")
    return lines


def table(result: dict) -> str:
    peaks = result["peaks"]
    peak_text = ", ".join(f"{k} {v / 1e12:,.2f} TFLOP/s" for k, v in peaks.items())
    lines = [f"machine: {result['machine']}; 1-min load average at start {result['load_avg_1min']:.1f}",
             f"matmul peak measured in this run: {peak_text}; bf16 rows: "
             f"{'yes' if result['bf16_used'] else 'no (bf16 matmul is slower than fp32 on this machine)'}",
             "", "LAMA evaluation (LAMA-34k test facts, manual prompts, random weights of the paper's shape)"]
    for name, entry in result["models"].items():
        if "lama" in entry:
            lines += lama_table(name, entry, peaks)
    for name, entry in result["models"].items():
        if entry.get("profile"):
            lines += ["", f"profile of our LAMA evaluation ({name}, one pass):", entry["profile"]]
    for name, entry in result["models"].items():
        mem = entry.get("memory")
        if mem:
            one, every = mem["one"], mem["all"]
            lines += ["", f"LAMA evaluation peak memory ({name}, batches of {mem['budget']} tokens, above the process "
                      "before it): "
                      f"{one['relations']} relation ({one['facts']} facts) {_mib(one['peak_bytes'])}, "
                      f"{every['relations']} relations ({every['facts']} facts) {_mib(every['peak_bytes'])}: "
                      f"x{every['peak_bytes'] / max(one['peak_bytes'], 1):.2f}"]
    pt_lines = []
    for name, entry in result["models"].items():
        pt = entry.get("ptuning")
        if not pt:
            continue
        rows = pt["rows"]
        for enc in ("lstm", "mlp"):
            ours, peft = rows[f"ours_{enc}"], rows[f"peft_{enc}"]
            pt_lines.append(f"  {name:18s} {enc:5s} {1 / ours['seconds']:9.2f} {1 / peft['seconds']:9.2f} "
                            f"{peft['seconds'] / ours['seconds']:8.2f}x {_mib(ours['peak_bytes']):>11s} "
                            f"{_mib(peft['peak_bytes']):>11s} {ours['trainable_params']:>10,} "
                            f"{peft['trainable_params']:>10,}")
    if pt_lines:
        first = next(e["ptuning"] for e in result["models"].values() if e.get("ptuning"))
        lines += ["", f"P-Tuning training steps (batch {first['batch_size']}, relation {first['relation']} train facts, "
                  f"frozen backbone, Adam; best of {first['steps']} steps)",
                  f"  {'model':18s} {'enc':5s} {'ours/s':>9s} {'PEFT/s':>9s} {'x PEFT':>9s} {'ours peak':>11s} "
                  f"{'PEFT peak':>11s} {'ours params':>10s} {'PEFT params':>10s}"] + pt_lines
    errors = [f"{name}: FAILED {entry['error']}" for name, entry in result["models"].items() if "error" in entry]
    if result.get("pet_error"):
        errors.append(f"PET step: FAILED {result['pet_error']}")
    if errors:
        lines += [""] + errors
    pet = result.get("pet")
    if pet:
        plain = pet["rows"]["plain"]["seconds"]
        lines += ["", f"PET training step ({pet['model']} shapes, {pet['params'] / 1e6:,.0f}M parameters, batch "
                  f"{pet['batch_size']} x {pet['length']} tokens, AdamW on every weight; best of {pet['steps']} steps)"]
        labels = {"plain": "plain Hugging Face masked-LM step (full logits, fp32)",
                  "ours": "ours: PET scorer (head at the mask), label-word loss, fp32",
                  "ours_bf16": "ours, bf16 autocast"}
        for key, row in pet["rows"].items():
            lines.append(f"  {labels[key]:58s} {1 / row['seconds']:7.3f} steps/s {plain / row['seconds']:6.2f}x  "
                         f"peak {_mib(row['peak_bytes'])}")
    lines.append(f"\nwall time {result['wall_s']:.0f} s")
    return "\n".join(lines)
