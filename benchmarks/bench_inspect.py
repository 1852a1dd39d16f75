"""Benchmark `lnexp inspect` on MiniLM (or SmolLM2) against the bare forward without hooks.

Each measurement is a fresh subprocess (so peak RSS is its own): it loads all-MiniLM-L6-v2
(the `models` extra), tokenizes and runs N generated sentences in batches, once bare (the
model's forward under inference mode, nothing else) and once through lnexp.inspect.core.measure
(hooks on the 13 LayerNorms, float64 statistics, int8 SQNR). One warm-up batch is run and not
timed. The two modes take turns for `--reps` rounds; medians are reported.

    python benchmarks/bench_inspect.py              # 1,000 sentences, 3 rounds (~1-2 min)
    python benchmarks/bench_inspect.py --n 10000 --reps 1
    python benchmarks/bench_inspect.py --model smollm2 --n 200   # 61 RMSNorms, from the cache

Targets: inspect / bare <= 1.5 in wall time of the timed loop and in peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1.5

VOCABULARY = ("the a of to and in that is was for on with as by at from he she they we it this "
         "model layer norm token data time year people way day man world life hand part child "
         "eye woman place work week case point number group problem fact city music river "
         "market paper energy light sound water history science language quickly slowly often "
         "never always today tomorrow small large early late young old important different "
         "new good high long great little own other right big public bad same able run make "
         "see know take get give find think tell become show leave feel bring begin keep hold "
         "write stand learn change lead understand watch follow stop create speak read spend "
         "grow open walk win offer remember love consider appear buy wait serve die send "
         "expect build stay fall cut reach kill remain suggest raise pass sell require report "
         "decide pull")


def sentences(n: int, seed: int = 0) -> list[str]:
    """n English-looking sentences of 4 to 30 words, the same for a given seed."""
    rng = random.Random(seed)
    words_ = VOCABULARY.split()
    out = []
    for _ in range(n):
        words = [rng.choice(words_) for _ in range(rng.randint(4, 30))]
        out.append(" ".join(words).capitalize() + rng.choice(".?!"))
    return out


def child(mode: str, n: int, batch: int, threads: int | None,
          model: str = "minilm") -> dict[str, float]:
    import torch

    if threads:
        torch.set_num_threads(threads)

    from lnexp.inspect.core import measure
    from lnexp.inspect.inputs import TextSource
    from lnexp.inspect.models import load
    from lnexp.inspect.options import InspectOptions

    t0 = time.perf_counter()
    loaded = load(model)
    load_s = time.perf_counter() - t0
    texts = sentences(n)
    warm = TextSource(texts[:batch], loaded.tokenizer, "warm-up")
    src = TextSource(texts, loaded.tokenizer, "bench")
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "bare":
        def run(source: TextSource) -> int:
            tokens = 0
            with torch.inference_mode():
                for b in source.batches(batch):
                    loaded.module(**b.kwargs)
                    tokens += int(b.mask.sum())
            return tokens
    else:
        def run(source: TextSource) -> int:
            return measure(loaded, source, InspectOptions(batch_size=batch)).inputs["tokens"]
    run(warm)
    t0 = time.perf_counter()
    tokens = run(src)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
            "load_s": load_s, "rss_loaded_mib": rss_loaded / 1024, "peak_rss_mib": peak / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="sentences")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", default="minilm", choices=("minilm", "smollm2"),
                    help="smollm2 loads from the model cache (the first run dequantizes it)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in both modes (default: torch's, one per core)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default benchmarks/results/bench_inspect[_MODEL].json")
    ap.add_argument("--child", choices=("bare", "inspect"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.batch, args.threads, args.model)))
        return
    if args.out is None:
        suffix = "" if args.model == "minilm" else f"_{args.model}"
        args.out = ROOT / "benchmarks" / "results" / f"bench_inspect{suffix}.json"
    if args.model != "minilm":  # build the model cache once, outside the timed rounds
        subprocess.run([sys.executable, "-c", "from lnexp.inspect.models import load; "
                        f"load({args.model!r})"], check=True, cwd=ROOT)
    loadavg = {"before": os.getloadavg()[0]}
    print(f"load average before: {loadavg['before']:.2f} on {os.cpu_count()} CPUs", file=sys.stderr)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "inspect": []}
    for rep in range(args.reps):
        for mode in ("bare", "inspect") if rep % 2 == 0 else ("inspect", "bare"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--n", str(args.n),
                                  "--batch", str(args.batch), "--model", args.model,
                                  *(["--threads", str(args.threads)] if args.threads else [])],
                                 check=True, capture_output=True,
                                 text=True, cwd=ROOT)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = runs[mode][-1]
            print(f"round {rep + 1} {mode:8s} {r['seconds']:6.2f} s  {r['tokens_per_s']:8.0f} "
                  f"tokens/s  peak RSS {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in runs.items()}
    ratios = {"wall": med["inspect"]["seconds"] / med["bare"]["seconds"],
              "peak_rss": med["inspect"]["peak_rss_mib"] / med["bare"]["peak_rss_mib"]}
    print(f"\n{args.model}, {args.n} sentences ({int(med['bare']['tokens'])} tokens), batch "
          f"{args.batch}, torch threads {args.threads or 'default'}, medians of {args.reps} "
          f"rounds:")
    print(f"{'':10s} {'loop s':>8s} {'tokens/s':>10s} {'peak RSS MiB':>13s} "
          f"{'RSS after load':>15s}")
    for m in ("bare", "inspect"):
        r = med[m]
        print(f"{m:10s} {r['seconds']:8.2f} {r['tokens_per_s']:10.0f} {r['peak_rss_mib']:13.0f} "
              f"{r['rss_loaded_mib']:15.0f}")
    for k, v in ratios.items():
        print(f"inspect / bare ({k}): {v:.2f}  (limit {LIMIT}) {'ok' if v <= LIMIT else 'OVER'}")
    loadavg["after"] = os.getloadavg()[0]
    print(f"load average before / after: {loadavg['before']:.2f} / {loadavg['after']:.2f} on "
          f"{os.cpu_count()} CPUs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "n": args.n, "batch": args.batch,
                                    "reps": args.reps,
                                    "threads": args.threads,
                                    "platform": platform.platform(), "load_average": loadavg,
                                    "runs": runs,
                                    "median": med, "ratios": ratios, "limit": LIMIT}, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
