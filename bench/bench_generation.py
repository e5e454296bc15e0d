"""Day 21: generation speed with and without the KV-cache, as a markdown table.

A character-level-sized GPT (vocab 65, 4 layers, 4 heads, width 128) generates 512
tokens greedily on the CPU, with the cache and without it. Two context sizes:

- block 1024: prompt + new tokens fit, so the cache serves every step;
- block 256: past 256 tokens the window slides, and both ways recompute the window.

Run:  python bench/bench_generation.py [--new-tokens 512] [--threads 1] [--repeats 3]
      python bench/bench_generation.py --quick   # smoke test: 64 new tokens, blocks 48 and 1024
Goal: at least 5x more tokens/s with the cache at block 1024. Timings on a shared
machine are noisy: the best of ``--repeats`` runs is reported.
"""

from __future__ import annotations

import argparse
import time

import torch

from course_lib.model import GPT, GPTConfig


def tokens_per_second(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return new_tokens / best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 new tokens, blocks 48 and 1024 (smoke test)")
    parser.add_argument("--new-tokens", type=int, default=None, help="default 512 (64 with --quick)")
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--blocks", type=int, nargs="+", default=None, help="default 256 1024 (48 1024 with --quick)")
    parser.add_argument("--presets", nargs="+", default=["classic", "modern"], choices=["classic", "modern"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.new_tokens is None:
        args.new_tokens = 64 if args.quick else 512
    if args.blocks is None:  # with --quick the window still slides at block 48 (16 + 64 tokens)
        args.blocks = [48, 1024] if args.quick else [256, 1024]
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{args.new_tokens} new tokens after a {args.prompt_tokens}-token prompt, greedy\n")  # fmt: skip
    print("| preset | block | no cache (tok/s) | KV-cache (tok/s) | speed-up | same tokens |")
    print("|---|---:|---:|---:|---:|:---:|")
    for preset in args.presets:
        for block in args.blocks:
            torch.manual_seed(0)
            make = GPTConfig.classic if preset == "classic" else GPTConfig.modern
            model = GPT(make(vocab_size=65, block_size=block, n_layer=4, n_head=4, n_embd=128)).eval()
            prompt = torch.randint(0, 65, (1, args.prompt_tokens))
            model.generate(prompt, 8)  # warm-up
            slow, a = tokens_per_second(model, prompt, args.new_tokens, False, args.repeats)
            fast, b = tokens_per_second(model, prompt, args.new_tokens, True, args.repeats)
            same = "yes" if torch.equal(a, b) else "NO"
            print(f"| {preset} | {block} | {slow:,.0f} | {fast:,.0f} | {fast / slow:.1f}x | {same} |", flush=True)


if __name__ == "__main__":
    main()
