"""Evaluation and the promotion gate: a candidate adapter against production (or the base model).

Both adapters are loaded side by side into one copy of the base model, and the base itself is the
same model with adapters disabled. Every metric comes from data, none from a product the code knows:

- from the dataset version's held-out split: ``heldout_loss`` / ``perplexity`` (mean NLL on the reviewed
  answers' tokens), ``preference_accuracy`` (share of held-out DPO pairs where the model gives the chosen
  answer the higher log-probability), ``reward_margin`` (DPO implicit reward margin against the base), and
  ``heldout_accuracy``: greedy answers judged against the reviewed answer (``gate.heldout_judge``);
- ``regression_accuracy`` / ``regression_kept``: the frozen regression set of earlier versions' examples
  (``training.evalsets``); *kept* is the share of the prompts the reference answers right that the
  candidate still answers right: what production already answers right must stay right;
- ``evalset:NAME`` / ``evalset:NAME:kept``: the same for each eval-set file in ``gate.eval_sets``;
- ``judge_score`` (optional): mean grade (1-5 mapped to 0-1) of the held-out answers from an LLM judge at any
  OpenAI-compatible URL (``judge.url``, ``judge.model``, ``judge.api_key``).

The gate (``settings.gate``) promotes only when ``primary_metric`` beats the reference by more than
``margin`` and no metric matching ``regression_metrics`` drops by more than ``regression_tolerance``. The
default primary, ``heldout_accuracy``, is one a worse adapter fails: an adapter that learned wrong answers, or
learned the right ones only for the exact prompts it saw, does not answer held-out prompts better than
production. The decision and its reasons go to the ``evaluations`` table (``training.registry.record_evaluation``).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.judge import Judge
from flywheel.settings import GateSettings, Settings
from training.chat import tokenize_chat
from training.common import read_split
from training.config import RecipeConfig, RecipeError, resolve_device
from training.evalsets import LLM_RIGHT, Check, heldout_checks, judge_locally, regression_checks, user_checks

LOWER_IS_BETTER = {"heldout_loss", "perplexity"}
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
    answers: list[dict[str, Any]] = field(default_factory=list)  # per check, both answers, for the report


def gate_checks(settings: Settings, dataset_dir: Path) -> list[Check]:
    """Every prompt the gate will ask for this dataset version (RecipeError for a bad eval-set file)."""
    gate = settings.gate
    if gate.heldout_judge == "llm" and not settings.judge.url:
        raise RecipeError("gate.heldout_judge: llm needs judge.url (an OpenAI-compatible endpoint)")
    return (heldout_checks(read_split(dataset_dir, "sft", "eval"), gate.heldout_judge)
            + regression_checks(settings, Path(dataset_dir).name) + user_checks(settings))


def evaluate(settings: Settings, config: RecipeConfig, base_model: Path, candidate: Path, reference: Path | None,
             dataset_dir: Path, reference_name: str = "base") -> Evaluation:
    """Measure ``candidate`` and ``reference`` (an adapter, or None for the base model) and apply the gate."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gate = settings.gate
    checks = gate_checks(settings, dataset_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda = resolve_device(settings.train.device) == "cuda"
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if cuda else torch.float32)
    if cuda:
        model = model.to("cuda")
    model = PeftModel.from_pretrained(model, str(candidate), adapter_name=CANDIDATE)
    if reference is not None:
        model.load_adapter(str(reference), adapter_name=REFERENCE)
    model.eval()
    sft_eval = read_split(dataset_dir, "sft", "eval")
    dpo_eval = read_split(dataset_dir, "dpo", "eval")
    scorer = Scorer(model, tokenizer, gate.batch_size)

    with model.disable_adapter():
        base_pairs = scorer.pair_logps(dpo_eval)
    results: dict[str, dict[str, float]] = {}
    answers: dict[str, list[str]] = {}
    for name, adapter in ((CANDIDATE, CANDIDATE), (REFERENCE, REFERENCE if reference is not None else None)):
        with _active(model, adapter):
            loss = scorer.assistant_nll(sft_eval)
            pairs = scorer.pair_logps(dpo_eval)
            answers[name] = scorer.generate([c.messages for c in checks], gate.max_new_tokens)
        results[name] = {
            "heldout_loss": loss,
            "perplexity": math.exp(loss) if not math.isnan(loss) else float("nan"),
            **_preference_metrics(pairs, base_pairs, config.dpo.beta),
        }
    right = {name: judge_answers(settings, checks, answers[name]) for name in answers}
    answer_metrics(results, right, checks)
    if settings.judge.url:
        heldout = [i for i, c in enumerate(checks) if c.set == "heldout"]
        for name in results:
            results[name]["judge_score"] = judge_score(settings, [checks[i] for i in heldout],
                                                       [answers[name][i] for i in heldout])
    decision = decide(results[CANDIDATE], results[REFERENCE], gate, reference_name)
    rows = [{"set": c.set, "id": c.id, "messages": c.messages, "reference_answer": c.reference,
             "reference": answers[REFERENCE][i], "candidate": answers[CANDIDATE][i],
             "reference_right": right[REFERENCE][i], "candidate_right": right[CANDIDATE][i]}
            for i, c in enumerate(checks)]
    return Evaluation(results[CANDIDATE], results[REFERENCE], reference_name, decision, rows)


def answer_metrics(results: dict[str, dict[str, float]], right: dict[str, list[bool]], checks: list[Check]) -> None:
    """Accuracy per set of checks, and for the regression and eval sets the share of the reference's right
    answers the candidate keeps (``:kept``; the reference keeps all of them by definition)."""
    sets: dict[str, list[int]] = {}
    for i, check in enumerate(checks):
        sets.setdefault(check.set, []).append(i)
    for set_name, members in sets.items():
        accuracy_key = f"{set_name}_accuracy" if set_name in ("heldout", "regression") else set_name
        for name in results:
            results[name][accuracy_key] = _mean([right[name][i] for i in members])
        if set_name == "heldout":
            continue
        kept_key = "regression_kept" if set_name == "regression" else f"{set_name}:kept"
        known = [i for i in members if right[REFERENCE][i]]
        results[CANDIDATE][kept_key] = _mean([right[CANDIDATE][i] for i in known])
        results[REFERENCE][kept_key] = 1.0 if known else float("nan")
    for name in results:
        results[name]["heldout_prompts"] = float(len(sets.get("heldout", [])))
        results[name]["regression_prompts"] = float(len(sets.get("regression", [])))


def decide(candidate: dict[str, float], reference: dict[str, float], gate: GateSettings,
           reference_name: str = "production") -> GateDecision:
    """Promote only if the primary metric beats the reference by more than the margin and nothing regresses."""
    primary, margin, tolerance = gate.primary_metric, gate.margin, gate.regression_tolerance
    if math.isnan(candidate.get(primary, math.nan)) or math.isnan(reference.get(primary, math.nan)):
        return GateDecision(False, [f"{primary}: not measurable (no held-out rows, or no such metric); "
                                    "nothing to promote on"])
    gain = sign_of(primary) * (candidate[primary] - reference[primary])
    promote = gain > margin
    reasons = [f"{primary}: {candidate[primary]:.3f} vs {reference_name} {reference[primary]:.3f} "
               f"({'+' if gain >= 0 else ''}{gain:.3f} {'>' if promote else '<='} margin {margin:.3f})"]
    for metric in sorted(candidate):
        if metric == primary or not any(fnmatch.fnmatchcase(metric, p) for p in gate.regression_metrics):
            continue
        if math.isnan(candidate[metric]) or math.isnan(reference.get(metric, math.nan)):
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
    return -1 if metric in LOWER_IS_BETTER else 1


JUDGE_PROMPT = ("You grade a support assistant's answer against the reference answer. Reply with one number "
                "from 1 (wrong) to 5 (right and helpful) and nothing else.\n\nReference answer: {reference}\n\n"
                "Question: {question}\nAnswer: {answer}")


def _judge(settings: Settings) -> Judge:
    judge = settings.judge
    return Judge(judge.url, judge.model, judge.api_key.get_secret_value(), lowest=1, highest=5)


def _grade(judge: Judge, check: Check, answer: str) -> float | None:
    return judge.grade(JUDGE_PROMPT.format(reference=check.reference, question=check.messages[-1]["content"],
                                           answer=answer))


def judge_answers(settings: Settings, checks: list[Check], answers: list[str]) -> list[bool]:
    """Right or wrong per answer: locally for exact / contains / regex, by the LLM judge for ``llm`` (a check
    the judge gave no grade counts as wrong: the gate never promotes on grades it did not get)."""
    judge = _judge(settings) if any(c.judge == "llm" for c in checks) else None
    out = []
    for check, answer in zip(checks, answers, strict=True):
        if check.judge == "llm":
            grade = _grade(judge, check, answer)
            out.append(grade is not None and grade >= LLM_RIGHT)
        else:
            out.append(judge_locally(check, answer))
    return out


def judge_score(settings: Settings, checks: list[Check], answers: list[str]) -> float:
    """Mean grade in [0, 1] from the LLM judge; answers it gave no grade for are left out (NaN: none graded)."""
    judge = _judge(settings)
    grades = [_grade(judge, check, answer) for check, answer in zip(checks, answers, strict=True)]
    graded = [g for g in grades if g is not None]
    return sum(graded) / len(graded) if graded else float("nan")


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

    def _completion_rows(self, prompt: list[dict], completion: list[dict]) -> tuple[list[int], list[int]]:
        """Token ids of prompt + completion, and the completion's assistant mask (as training sees it)."""
        encoded = tokenize_chat(self.tokenizer, list(prompt) + list(completion), last_turn_only=True)
        return encoded["input_ids"], encoded["assistant_masks"]

    def _sum_logps(self, rows: list[tuple[list[int], list[int]]]) -> list[tuple[float, int]]:
        """Sum of log-probs of each row's masked (assistant) tokens, and how many there were."""
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
            for i, (ids, mask) in enumerate(batch):
                targets = torch.tensor(mask[1:], dtype=torch.bool)
                span = logps[i, : len(ids) - 1][targets]
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
