"""Model server throughput: 16 concurrent `openai` clients vs one request at a time, same run, same server.

Both phases send identical requests (model ``production`` = a LoRA adapter, temperature 0, exactly
``--max-tokens`` tokens each: EOS is biased away) to the real server on 127.0.0.1. Concurrent requests
are batched into shared generate calls; the baseline sends the next request only after the previous
answer arrived. Prints requests/s, tokens/s, p50/p99 latency of both and the ratio (bar: >= 3x).

    .venv/bin/python benchmarks/serve_bench.py [--clients 16] [--requests 64] [--max-tokens 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

BAR = 3.0


def make_lora(settings, version: str) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(settings.train.base_model)
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    model.save_pretrained(settings.adapters_dir / version)


def run_phase(url: str, clients: int, requests: int, max_tokens: int, eos: int) -> dict[str, float]:
    import openai

    questions = ["How much does the Plus plan cost?", "Can I get a refund?", "Does Lumen work offline?",
                 "How do I export my notes?"]
    latencies: list[float] = []
    failures: list[BaseException] = []
    per_client = requests // clients

    def client_loop(n: int) -> None:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
        for i in range(per_client):
            started = time.perf_counter()
            try:
                reply = client.chat.completions.create(
                    model="production", max_tokens=max_tokens, temperature=0, logit_bias={str(eos): -100},
                    messages=[{"role": "user", "content": questions[(n + i) % len(questions)]}])
                assert reply.usage.completion_tokens == max_tokens
            except BaseException as exc:
                failures.append(exc)
                return
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]!r}")
    latencies.sort()
    done = len(latencies)
    return {"requests": done, "wall_s": wall, "rps": done / wall, "tok_s": done * max_tokens / wall,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(done - 1, round(0.99 * (done - 1)))] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64, help="per phase")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="serve.torch_threads (1 suits a shared 2-core box)")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from demo.model import build_demo_model
    from flywheel.settings import load_settings
    from serving.app import background_server
    from training.base_model import ensure_base_model

    configured = load_settings()  # the configured model, else the demo's tiny one (built once)
    base_model = ensure_base_model(configured) if configured.train.base_model else build_demo_model(configured)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as home:
        settings = load_settings(home=Path(home), train={"base_model": base_model},
                                 serve={"max_batch_size": args.clients, "torch_threads": args.threads})
        settings.ensure_dirs()
        make_lora(settings, "v1")
        eos = AutoTokenizer.from_pretrained(base_model).eos_token_id
        with background_server(settings, production_hint="v1") as url:
            run_phase(url, 1, 2, args.max_tokens, eos)  # warm-up
            baseline = run_phase(url, 1, args.requests, args.max_tokens, eos)
            batched = run_phase(url, args.clients, args.requests, args.max_tokens, eos)

    ratio = batched["rps"] / baseline["rps"]
    print(f"model: {base_model.name}; {args.requests} requests per phase, {args.max_tokens} tokens each, "
          "LoRA adapter via `production`")
    print(f"{'phase':<28}{'req/s':>8}{'tok/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in (("one at a time (baseline)", baseline), (f"{args.clients} concurrent clients", batched)):
        print(f"{name:<28}{r['rps']:>8.2f}{r['tok_s']:>9.1f}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}")
    print(f"throughput ratio: {ratio:.2f}x (bar >= {BAR:.0f}x: {'PASS' if ratio >= BAR else 'FAIL'})")
    if ratio < BAR:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
