"""Evaluation and the promotion gate: a candidate adapter against production (or the base model).

Both adapters are loaded side by side into one copy of the base model, and the base itself is the
same model with adapters disabled. Metrics per model:

- ``sft_eval_loss`` / ``perplexity``: mean NLL on assistant tokens of the dataset's held-out SFT split;
- ``preference_accuracy``: share of held-out DPO pairs where the model gives the chosen answer the higher
  log-probability; ``reward_margin``: DPO implicit reward margin ``beta * (Δchosen - Δrejected)`` against
  the base model (0 for the base itself);
- ``task_accuracy``: greedy answers to the domain's held-out paraphrases (``Fact.heldout``) judged with
  ``flywheel.domain.is_correct``; ``fix_rate``: the share of those the reference got wrong that the
  candidate gets right (the "bad-case fix rate");
- ``golden_accuracy``: the regression set — training-side questions the reference answers correctly —
  must stay right;
- ``judge_score`` (optional): mean grade (1-5 mapped to 0-1) from an LLM judge at any OpenAI-compatible
  URL (``eval.judge_url``; key: ``curate.judge_api_key``).

The gate promotes only when the primary metric beats the reference by more than
``settings.train.gate_margin`` and no regression metric is worse by more than
``settings.train.regression_tolerance``; the decision and its reasons go to the ``evaluations`` table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel import domain
from flywheel.settings import Settings
from flywheel.warehouse import connect, content_id, now
from training.config import RecipeConfig

HIGHER_IS_BETTER = {"task_accuracy": True, "preference_accuracy": True, "sft_eval_loss": False,
                    "golden_accuracy": True}
REGRESSION_METRICS = ("golden_accuracy", "preference_accuracy")
CANDIDATE, REFERENCE = "candidate", "reference"


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return "promote" if self.promote else "reject"


@dataclass
class Evaluation:
    candidate: dict[str, float]
    reference: dict[str, float]
    reference_name: str  # "production vK" or "base"
    gate: GateDecision
    answers: list[dict[str, Any]] = field(default_factory=list)  # per held-out prompt, for the report


def evaluate(settings: Settings, config: RecipeConfig, base_model: Path, candidate: Path, reference: Path | None,
             dataset_dir: Path, reference_name: str = "base") -> Evaluation:
    """Measure ``candidate`` and ``reference`` (an adapter, or None for the base model) and apply the gate."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.common import read_split

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32 if not torch.cuda.is_available()
                                                 else torch.bfloat16)
    if torch.cuda.is_available() and settings.train.device != "cpu":
        model = model.to("cuda")
    model = PeftModel.from_pretrained(model, str(candidate), adapter_name=CANDIDATE)
    if reference is not None:
        model.load_adapter(str(reference), adapter_name=REFERENCE)
    model.eval()
    sft_eval = read_split(dataset_dir, "sft", "eval")
    dpo_eval = read_split(dataset_dir, "dpo", "eval")
    scorer = Scorer(model, tokenizer, config.eval.batch_size)

    with model.disable_adapter():
        base_pairs = scorer.pair_logps(dpo_eval)
    results: dict[str, dict[str, float]] = {}
    answers: dict[str, list[str]] = {}
    prompts = _prompts()
    for name, adapter in ((CANDIDATE, CANDIDATE), (REFERENCE, REFERENCE if reference is not None else None)):
        with _active(model, adapter):
            loss = scorer.assistant_nll(sft_eval)
            pairs = scorer.pair_logps(dpo_eval)
            answers[name] = scorer.generate([p["messages"] for p in prompts], config.eval.max_new_tokens)
        results[name] = {
            "sft_eval_loss": loss,
            "perplexity": math.exp(loss) if not math.isnan(loss) else float("nan"),
            **_preference_metrics(pairs, base_pairs, config.dpo.beta),
        }
    _answer_metrics(results, answers, prompts)
    if config.eval.judge_url:
        for name in results:
            results[name]["judge_score"] = judge_score(settings, config, prompts, answers[name])
    gate = decide(results[CANDIDATE], results[REFERENCE], config.gate.primary_metric, settings.train.gate_margin,
                  settings.train.regression_tolerance, reference_name)
    rows = [{**p, "reference": answers[REFERENCE][i], "candidate": answers[CANDIDATE][i]}
            for i, p in enumerate(prompts)]
    return Evaluation(results[CANDIDATE], results[REFERENCE], reference_name, gate, rows)


def decide(candidate: dict[str, float], reference: dict[str, float], primary: str, margin: float,
           tolerance: float, reference_name: str = "production") -> GateDecision:
    """Promote only if ``primary`` beats the reference by more than ``margin`` and nothing regresses."""
    sign = 1 if HIGHER_IS_BETTER[primary] else -1
    if math.isnan(candidate.get(primary, math.nan)) or math.isnan(reference.get(primary, math.nan)):
        return GateDecision(False, [f"{primary}: not measurable (empty held-out split?); nothing to promote on"])
    gain = sign * (candidate[primary] - reference[primary])
    promote = gain > margin
    reasons = [f"{primary}: {candidate[primary]:.3f} vs {reference_name} {reference[primary]:.3f} "
               f"({'+' if gain >= 0 else ''}{gain:.3f} {'>' if promote else '<='} margin {margin:.3f})"]
    for metric in REGRESSION_METRICS:
        if metric == primary or math.isnan(candidate.get(metric, math.nan)) or math.isnan(reference.get(metric, math.nan)):
            continue
        drop = sign_of(metric) * (reference[metric] - candidate[metric])
        if drop > tolerance:
            promote = False
            reasons.append(f"regression: {metric} {candidate[metric]:.3f} vs {reference_name} "
                           f"{reference[metric]:.3f} (worse by {drop:.3f} > tolerance {tolerance:.3f})")
        else:
            reasons.append(f"{metric}: {candidate[metric]:.3f} vs {reference[metric]:.3f} (within tolerance)")
    return GateDecision(promote, reasons)


def sign_of(metric: str) -> int:
    return 1 if HIGHER_IS_BETTER.get(metric, True) else -1


def record_evaluation(settings: Settings, adapter_version: str, against: str | None, evaluation: Evaluation) -> str:
    """Store metrics, decision and reasons in ``evaluations``; returns the row id."""
    at = now()
    row_id = content_id("evaluation", adapter_version, against, at.isoformat())
    metrics = {"candidate": evaluation.candidate, "reference": evaluation.reference,
               "reference_name": evaluation.reference_name}
    with connect(settings) as con:
        con.execute(
            "INSERT INTO evaluations (id, adapter_version, against, metrics, decision, reasons, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [row_id, adapter_version, against, json.dumps(metrics, allow_nan=True), evaluation.gate.decision,
             json.dumps(evaluation.gate.reasons), at],
        )
    return row_id


JUDGE_PROMPT = ("You grade a support assistant's answer against the reference answer. Reply with one number "
                "from 1 (wrong) to 5 (right and helpful) and nothing else.\n\nReference answer: {reference}\n\n"
                "Question: {question}\nAnswer: {answer}")


def judge_score(settings: Settings, config: RecipeConfig, prompts: list[dict[str, Any]], answers: list[str]) -> float:
    """Mean grade in [0, 1] from an LLM judge (any OpenAI-compatible server) of the held-out answers;
    answers the judge gave no grade for are left out, and NaN means it graded none."""
    from flywheel.judge import Judge

    judge = Judge(config.eval.judge_url, config.eval.judge_model, settings.curate.judge_api_key.get_secret_value(),
                  lowest=1, highest=5)
    grades = [judge.grade(JUDGE_PROMPT.format(reference=domain.FACTS_BY_ID[prompt["fact"]].answer,
                                              question=prompt["messages"][-1]["content"], answer=answer))
              for prompt, answer in zip(prompts, answers, strict=True) if prompt["set"] == "heldout"]
    graded = [g for g in grades if g is not None]
    return sum(graded) / len(graded) if graded else float("nan")


def _prompts() -> list[dict[str, Any]]:
    """Held-out paraphrases (task accuracy) and training-side questions (regression set), per fact."""
    out = []
    for fact in domain.FACTS:
        for kind, questions in (("heldout", fact.heldout), ("golden", fact.questions)):
            for q in questions:
                out.append({"fact": fact.id, "set": kind, "messages": [
                    {"role": "system", "content": domain.SYSTEM_PROMPT}, {"role": "user", "content": q}]})
    return out


def _answer_metrics(results: dict[str, dict[str, float]], answers: dict[str, list[str]],
                    prompts: list[dict[str, Any]]) -> None:
    right = {name: [domain.is_correct(domain.FACTS_BY_ID[p["fact"]], a) for p, a in zip(prompts, answers[name],
                                                                                          strict=True)]
             for name in answers}
    heldout = [i for i, p in enumerate(prompts) if p["set"] == "heldout"]
    golden = [i for i, p in enumerate(prompts) if p["set"] == "golden" and right[REFERENCE][i]]
    to_fix = [i for i in heldout if not right[REFERENCE][i]]
    for name in answers:
        results[name]["task_accuracy"] = _mean([right[name][i] for i in heldout])
        results[name]["golden_accuracy"] = _mean([right[name][i] for i in golden])
        results[name]["fix_rate"] = _mean([right[name][i] for i in to_fix])
        results[name]["golden_prompts"] = len(golden)


def _preference_metrics(pairs: list[tuple[float, float]], base: list[tuple[float, float]], beta: float) -> dict:
    if not pairs:
        return {"preference_accuracy": float("nan"), "reward_margin": float("nan")}
    accuracy = _mean([c > r for c, r in pairs])
    margin = _mean([beta * ((c - bc) - (r - br)) for (c, r), (bc, br) in zip(pairs, base, strict=True)])
    return {"preference_accuracy": accuracy, "reward_margin": margin}


def _mean(values: list[Any]) -> float:
    return sum(float(v) for v in values) / len(values) if values else float("nan")


class _Active:
    def __init__(self, model: Any, adapter: str | None):
        self.model, self.adapter, self._ctx = model, adapter, None

    def __enter__(self) -> None:
        if self.adapter is None:
            self._ctx = self.model.disable_adapter()
            self._ctx.__enter__()
        else:
            self.model.set_adapter(self.adapter)

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


def _active(model: Any, adapter: str | None) -> _Active:
    """Run with one named adapter active, or with adapters disabled (the base model) for None."""
    return _Active(model, adapter)


class Scorer:
    """Batched log-probs and greedy generation with whichever adapter is active."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def _completion_rows(self, prompt: list[dict], completion: list[dict]) -> tuple[list[int], int]:
        prompt_text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full_text = self.tokenizer.apply_chat_template(prompt + completion, tokenize=False)
        prompt_ids = self.tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        full_ids = self.tokenizer(full_text, add_special_tokens=False)["input_ids"]
        return full_ids, len(prompt_ids)

    def _sum_logps(self, rows: list[tuple[list[int], int]]) -> list[tuple[float, int]]:
        """Sum of log-probs of the tokens after each row's prompt, and how many there were."""
        import torch

        out = []
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start: start + self.batch_size]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for i, (ids, _) in enumerate(batch):
                input_ids[i, : len(ids)] = torch.tensor(ids)
                mask[i, : len(ids)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logps = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, input_ids[:, 1:, None].to(self.device))
            logps = logps.squeeze(-1).cpu()
            for i, (ids, prompt_len) in enumerate(batch):
                span = logps[i, prompt_len - 1: len(ids) - 1]
                out.append((float(span.sum()), int(span.numel())))
        return out

    def assistant_nll(self, rows: Any) -> float:
        """Mean NLL per assistant token of the last assistant turn of each SFT row."""
        scored = self._sum_logps([self._completion_rows(r["messages"][:-1], r["messages"][-1:]) for r in rows])
        tokens = sum(n for _, n in scored)
        return -sum(s for s, _ in scored) / tokens if tokens else float("nan")

    def pair_logps(self, pairs: Any) -> list[tuple[float, float]]:
        chosen = self._sum_logps([self._completion_rows(p["prompt"], p["chosen"]) for p in pairs])
        rejected = self._sum_logps([self._completion_rows(p["prompt"], p["rejected"]) for p in pairs])
        return [(c, r) for (c, _), (r, _) in zip(chosen, rejected, strict=True)]

    def generate(self, conversations: list[list[dict]], max_new_tokens: int) -> list[str]:
        import torch

        tok = self.tokenizer
        side, tok.padding_side = tok.padding_side, "left"
        answers = []
        try:
            for start in range(0, len(conversations), self.batch_size):
                texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                         for c in conversations[start: start + self.batch_size]]
                enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
                with torch.no_grad():
                    out = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                              pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                answers += tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        finally:
            tok.padding_side = side
        return [a.strip() for a in answers]
