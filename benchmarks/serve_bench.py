"""Model server throughput: dynamic batching on vs off, the same 16 concurrent `openai` clients, same run.

The baseline is what a user gets from the same server with batching off (``serve.max_batch_size: 1``)
under the same load: 16 concurrent clients, the same requests, prompts of mixed length (one line up to a
long multi-turn conversation), so the batched server pays for padding rows of different lengths. Both
servers run in this process on 127.0.0.1 and answer with a LoRA adapter (model ``production``),
temperature 0, exactly ``--max-tokens`` tokens each (EOS biased away). With ``--rounds`` above 1 the two
phases alternate and the ratio of each round is printed, so load from other work on the machine shows.

    .venv/bin/python benchmarks/serve_bench.py [--clients 16] [--requests 64] [--max-tokens 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BAR = 2.0  # batching must at least double throughput at equal concurrency
SHORT = "How much does the Plus plan cost?"
LONG_TURNS = [
    ("user", "Hi, I have been using Lumen Notes for two years on my laptop and my phone."),
    ("assistant", "Thanks for being with us! How can I help today?"),
    ("user", "Since last week the phone app shows an older version of some notes, and when I edit them "
             "there the laptop loses the newer text. I changed my password around the same time."),
    ("assistant", "Sorry about that. Sync uses your account session, so after a password change each device "
                  "has to sign in again before it can upload its edits."),
]


def prompts() -> list[list[dict[str, str]]]:
    """Conversations from one short line to a long multi-turn one: the lengths a real queue mixes."""
    long = [{"role": r, "content": c} for r, c in LONG_TURNS]
    return [[{"role": "user", "content": SHORT}],
            long[:2] + [{"role": "user", "content": "Can I get a refund for the yearly plan?"}],
            long + [{"role": "user", "content": "I signed in again; what else should I check?"}],
            [{"role": "user", "content": "Does Lumen work offline?"}],
            long * 2 + [{"role": "user", "content": "Still broken. Please tell me every step, in order."}]]


def make_lora(settings, version: str) -> None:
    """An r16 all-linear LoRA adapter, registered as ``version`` (random weights: speed does not care)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.files import model_fingerprint
    from training.registry import register_adapter

    base = settings.train.base_model
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    trained = settings.home / "trained" / version
    model.save_pretrained(trained)
    register_adapter(settings, trained, {"base_model": str(base), "base_model_hash": model_fingerprint(base)})


def run_phase(url: str, clients: int, requests: int, max_tokens: int, eos: int) -> dict[str, float]:
    import openai

    conversations = prompts()
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
                    messages=conversations[(n + i) % len(conversations)])
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
    parser.add_argument("--requests", type=int, default=64, help="per phase and round")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="serve.torch_threads (1 suits a shared 2-core box)")
    args = parser.parse_args()

    from contextlib import ExitStack

    from transformers import AutoTokenizer

    from demo.model import build_demo_model
    from flywheel.settings import load_settings
    from serving.app import background_server
    from training.base_model import ensure_base_model

    configured = load_settings()  # the configured model, else the demo's tiny one (built once)
    base_model = ensure_base_model(configured) if configured.train.base_model else build_demo_model(configured)
    eos = AutoTokenizer.from_pretrained(base_model).eos_token_id
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as home, ExitStack() as servers:
        urls = {}
        for name, batch in (("batching off (baseline)", 1), ("batching on", args.clients)):
            settings = load_settings(home=Path(home) / f"b{batch}", train={"base_model": base_model},
                                     serve={"max_batch_size": batch, "torch_threads": args.threads})
            settings.ensure_dirs()
            make_lora(settings, "v1")
            urls[name] = servers.enter_context(background_server(settings, production_hint="v1"))
            run_phase(urls[name], args.clients, args.clients, args.max_tokens, eos)  # warm-up
        rounds = []
        for _ in range(args.rounds):
            rounds.append({name: run_phase(url, args.clients, args.requests, args.max_tokens, eos)
                           for name, url in urls.items()})

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    lengths = sorted(len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=False))
                     for p in prompts())
    print(f"model: {base_model.name}; {args.clients} concurrent clients in both phases; {args.requests} requests "
          f"per phase and round, {args.max_tokens} tokens each; prompts of {lengths[0]}-{lengths[-1]} tokens; "
          "LoRA adapter via `production`")
    print(f"{'round':<7}{'phase':<26}{'req/s':>8}{'tok/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    ratios = []
    for n, phases in enumerate(rounds, start=1):
        for name, r in phases.items():
            print(f"{n:<7}{name:<26}{r['rps']:>8.2f}{r['tok_s']:>9.1f}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}")
        ratios.append(phases["batching on"]["rps"] / phases["batching off (baseline)"]["rps"])
        print(f"{n:<7}{'ratio':<26}{ratios[-1]:>7.2f}x")
    ratio = statistics.median(ratios)
    print(f"throughput ratio, batching on vs off at {args.clients} clients: {ratio:.2f}x "
          f"(bar >= {BAR:.0f}x: {'PASS' if ratio >= BAR else 'FAIL'})")
    if ratio < BAR:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
