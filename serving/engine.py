"""Generation with dynamic batching and per-request LoRA adapters (transformers + peft).

One worker thread owns the model. Requests that arrive within ``batch_window_ms`` of each other (up to
``max_batch_size``) run as ONE ``generate`` call; peft's mixed-batch inference (``adapter_names=``)
routes each row through its own adapter, so a batch may mix the base model and several adapter
versions. Adapter loads and unloads run on the same thread *between* batches, in arrival order: a
request admitted before a change finishes on the adapter it was admitted with, and no generate call
ever sees the module tree change under it (peft's ``set_adapter`` is never used: it is global state).

Sampling is done per row by :class:`_RowSampler` (temperature, top_p, seed), and per-row limits,
stop strings, streaming deltas and cancellation by :class:`_BatchTracker`, a stopping criterion that
sees every new token of every row.

One request can never fail its batch: a row whose logits are not finite fails alone, and a generate
call that raises is run again row by row, so only the row that breaks alone fails. Every row has a seed
(drawn at admission when the request gave none), so a row run again alone makes the same tokens and a
stream that already sent part of its answer goes on where it was.
"""

from __future__ import annotations

import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.registry import AdapterError

log = logging.getLogger(__name__)

BASE = "base"  # the name requests use for "no adapter"
_PEFT_BASE = "__base__"  # peft's name for the same thing in ``adapter_names``
# Below this temperature sampling is greedy: softmax(logits / 1e-45) overflows to inf/nan, and the limit of
# sampling as the temperature goes to 0 is the most likely token anyway.
GREEDY_BELOW = 1e-3


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    logit_bias: tuple[tuple[int, float], ...] = ()

    @staticmethod
    def new_seed() -> int:
        return secrets.randbits(63)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    text: str
    finish_reason: str  # stop | length | cancelled
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    message: str


Event = Delta | Finished | Failed


@dataclass
class Generation:
    """One request in flight. ``emit`` must be thread-safe: the worker thread calls it."""

    prompt_ids: list[int]
    adapter: str
    params: SamplingParams
    emit: Callable[[Event], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    sent: str = ""  # text already streamed: a row run again alone must go on from it, not repeat it


@dataclass
class _Task:
    fn: Callable[[], Any]
    future: Future = field(default_factory=Future)

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            self.future.set_result(self.fn())
        except BaseException as exc:  # delivered to the caller, the worker keeps going
            self.future.set_exception(exc)


_STOP = object()


class GenerationEngine:
    """Owns the model, the tokenizer and the worker thread that batches requests."""

    def __init__(self, model_dir: Path, *, max_batch_size: int = 16, batch_window_ms: int = 10,
                 device: str = "cpu", torch_threads: int | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model_dir = Path(model_dir)
        self.device = device
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_ms / 1000
        self.on_batch = on_batch
        self.torch_threads = torch_threads
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._torch = torch
        self._model_cls = AutoModelForCausalLM
        self.model = self._load_base()
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        self.eos_ids = frozenset(eos if isinstance(eos, list) else [eos])
        self.control_tokens = control_tokens(self.tokenizer)
        self.adapters: dict[str, Path] = {}  # loaded on the worker thread, read anywhere
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.busy = threading.Event()  # set while a generate call runs

    def _load_base(self):
        model = self._model_cls.from_pretrained(self.model_dir, dtype=self._torch.float32).to(self.device)
        model.eval()
        return model

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flywheel-generate", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    # ---- public API (any thread) -----------------------------------------------------------------
    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return list(ids)

    def control_token_in(self, text: str) -> str | None:
        """The first control token (``<|im_start|>``, EOS, ...) written out in ``text``, if any: the chat
        template would encode it as the real token, so a user could forge turns of the conversation."""
        found = self.control_tokens.search(text) if self.control_tokens else None
        return found.group() if found else None

    def submit(self, generation: Generation) -> None:
        self._queue.put(generation)

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the worker thread between two batches (model changes go through here)."""
        task = _Task(fn)
        self._queue.put(task)
        return task.future

    def queue_depth(self) -> int:
        return self._queue.qsize()

    # ---- adapters (worker thread only, through ``call``) -----------------------------------------
    def load_adapter(self, name: str, path: Path) -> None:
        """Load ``path`` beside the adapters already loaded, then smoke-test it; undo on any failure."""
        from peft import PeftModel

        if name in self.adapters:
            return
        first = not isinstance(self.model, PeftModel)
        try:
            if first:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=False)
            else:
                self.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
            self.model.eval()
            self._smoke_test(name)
        except Exception as exc:
            self._forget(name, first)
            raise AdapterError(f"adapter {name} at {path} refused: {exc}") from exc
        self.adapters[name] = Path(path)

    def unload_adapter(self, name: str) -> None:
        if name not in self.adapters:
            return
        del self.adapters[name]
        self._forget(name, first=not self.adapters)

    def _forget(self, name: str, first: bool) -> None:
        """Remove a (possibly half-loaded) adapter; with none left, go back to the plain base model."""
        from peft import PeftModel

        if first:
            # injection may have left LoRA layers in the base model: reload it clean from disk
            self.model = self._load_base()
        elif isinstance(self.model, PeftModel) and name in self.model.peft_config:
            self.model.delete_adapter(name)

    def _smoke_test(self, name: str) -> None:
        torch = self._torch
        ids = self.encode_chat([{"role": "user", "content": "Hello"}])
        input_ids = torch.tensor([ids], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, adapter_names=[name]).logits
            if not torch.isfinite(logits).all():
                raise AdapterError("smoke test: the adapter produces non-finite logits")
            out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                      adapter_names=[name], max_new_tokens=2, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        if out.shape[1] <= input_ids.shape[1]:
            raise AdapterError("smoke test: the adapter generated no tokens")

    # ---- worker ----------------------------------------------------------------------------------
    def _run(self) -> None:
        # Small models gain little from intra-op threads, and on a shared CPU those threads spin against
        # other work (6x slower per token with 2 threads on a busy 2-core box): serve.torch_threads caps them.
        threads = self._torch.get_num_threads()
        if self.torch_threads:
            self._torch.set_num_threads(self.torch_threads)
        try:
            self._serve_queue()
        finally:
            self._torch.set_num_threads(threads)

    def _serve_queue(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _Task):
                item.run()
                continue
            batch, held = [item], None
            deadline = time.monotonic() + self.batch_window_s
            while len(batch) < self.max_batch_size:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if isinstance(nxt, Generation):
                    batch.append(nxt)
                else:  # a model change or stop: after this batch, in order
                    held = nxt
                    break
            self._generate(batch)
            if held is _STOP:
                return
            if held is not None:
                held.run()

    def _generate(self, batch: list[Generation]) -> None:
        rows = [g for g in batch if not g.cancelled.is_set()]
        for g in batch:
            if g.cancelled.is_set():
                g.emit(Finished("", "cancelled", 0))
        if not rows:
            return
        self.busy.set()
        try:
            for g in self._generate_rows(rows):  # the batch failed: each row alone, so only a row that
                self._generate_rows([g])           # fails on its own fails
        finally:
            self.busy.clear()

    def _generate_rows(self, rows: list[Generation]) -> list[Generation]:
        """One generate call over ``rows``; returns the rows it left unfinished because it raised (a single
        row is then failed with the error instead)."""
        from transformers import LogitsProcessorList, StoppingCriteriaList

        torch = self._torch
        if self.on_batch is not None:
            self.on_batch(len(rows))
        pad = self.tokenizer.pad_token_id
        width = max(len(g.prompt_ids) for g in rows)
        input_ids = torch.tensor([[pad] * (width - len(g.prompt_ids)) + g.prompt_ids for g in rows])
        attention = torch.tensor([[0] * (width - len(g.prompt_ids)) + [1] * len(g.prompt_ids) for g in rows])
        kwargs: dict[str, Any] = {}
        if self.adapters:
            kwargs["adapter_names"] = [_PEFT_BASE if g.adapter == BASE else g.adapter for g in rows]
        tracker = _BatchTracker(rows, self.tokenizer, self.eos_ids)
        try:
            with torch.inference_mode():
                self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                    max_new_tokens=max(g.params.max_tokens for g in rows), do_sample=False,
                    logits_processor=LogitsProcessorList([_RowSampler(rows, tracker.fail_row)]),
                    stopping_criteria=StoppingCriteriaList([tracker]),
                    pad_token_id=pad, eos_token_id=sorted(self.eos_ids), **kwargs,
                )
            tracker.finish_rest("length")
        except Exception as exc:
            if len(rows) > 1:
                log.warning("generate failed for a batch of %d (%s: %s); running its unfinished rows one by one",
                            len(rows), type(exc).__name__, exc)
                return tracker.unfinished()
            log.exception("generate failed for one request")
            tracker.fail_rest(f"generation failed: {exc}")
        return []


class _RowSampler:
    """Chooses each row's next token itself (logit_bias, temperature, top_p, per-request seed) and returns
    scores where only that token is finite, so ``generate``'s greedy pick takes it. Rows are thus
    independent of their batch: the same request and seed give the same tokens alone or batched.
    A row whose logits are not finite (a broken adapter, an overflow) is failed alone through ``fail_row``."""

    def __init__(self, rows: list[Generation], fail_row: Callable[[int, str], None]) -> None:
        import torch

        self.rows = rows
        self.fail_row = fail_row
        self.generators = [torch.Generator().manual_seed(g.params.seed) for g in rows]

    def __call__(self, input_ids, scores):
        import torch

        chosen = torch.zeros(len(self.rows), dtype=torch.long)
        logits = scores.float().cpu()
        for i, g in enumerate(self.rows):
            p = g.params
            row = logits[i]
            for token, bias in p.logit_bias:
                row[token] += bias
            if not bool(torch.isfinite(row).all()):
                self.fail_row(i, "generation failed: the model produced non-finite scores for this request")
                continue
            if p.temperature < GREEDY_BELOW:
                chosen[i] = int(torch.argmax(row))
                continue
            probs = torch.softmax(row / p.temperature, dim=-1)
            if p.top_p < 1.0:
                sorted_probs, order = torch.sort(probs, descending=True)
                keep = torch.cumsum(sorted_probs, 0) - sorted_probs < p.top_p
                keep[0] = True  # the most likely token always stays, however small top_p is
                probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
            chosen[i] = int(torch.multinomial(probs, 1, generator=self.generators[i]))
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(self.rows), device=scores.device), chosen.to(scores.device)] = 0.0
        return out


class _BatchTracker:
    """Stopping criterion that follows every row: streams text deltas, applies per-row max_tokens and
    stop strings, ends rows whose client went away, and reports each row's end exactly once."""

    def __init__(self, rows: list[Generation], tokenizer, eos_ids: frozenset[int]) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.done = [False] * len(rows)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        last = input_ids[:, -1].tolist()  # one device sync per step, not one per row
        for i, g in enumerate(self.rows):
            if self.done[i]:
                continue
            if g.cancelled.is_set():
                self._finish(i, "", "cancelled")
                continue
            token = last[i]
            if token in self.eos_ids:
                self._finish(i, self._text(i), "stop")
                continue
            self.tokens[i].append(token)
            text = self._text(i)
            cut = min((text.find(s) for s in g.params.stop if s in text), default=-1)
            if cut >= 0:
                self._finish(i, text[:cut], "stop")
            elif len(self.tokens[i]) >= g.params.max_tokens:
                self._finish(i, text, "length")
            else:
                self._stream(i, text)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)

    def _text(self, i: int) -> str:
        return self.tokenizer.decode(self.tokens[i], skip_special_tokens=True)

    def _send(self, i: int, text: str) -> None:
        """Stream ``text`` beyond what this row already sent (in an earlier, failed batch too)."""
        g = self.rows[i]
        if not text.startswith(g.sent[: len(text)]):
            raise _Diverged
        if len(text) > len(g.sent):
            g.emit(Delta(text[len(g.sent):]))
            g.sent = text

    def _stream(self, i: int, text: str) -> None:
        # hold back what could be the start of a stop string or half of a multi-byte character
        hold = max((len(s) - 1 for s in self.rows[i].params.stop), default=0)
        end = len(text) - hold
        if text.endswith("\ufffd"):
            end = min(end, len(text) - 1)
        try:
            self._send(i, text[:max(end, 0)])
        except _Diverged:
            self.fail_row(i, "generation failed: run again after an error, this request's answer came out "
                             "different from what was already streamed")

    def _finish(self, i: int, text: str, reason: str) -> None:
        g = self.rows[i]
        if reason != "cancelled":
            try:
                self._send(i, text)
            except _Diverged:
                self.fail_row(i, "generation failed: run again after an error, this request's answer came out "
                                 "different from what was already streamed")
                return
        self.done[i] = True
        g.emit(Finished(text, reason, len(self.tokens[i])))

    def fail_row(self, i: int, message: str) -> None:
        if not self.done[i]:
            self.done[i] = True
            self.rows[i].emit(Failed(message))

    def unfinished(self) -> list[Generation]:
        return [g for i, g in enumerate(self.rows) if not self.done[i]]

    def finish_rest(self, reason: str) -> None:
        for i, g in enumerate(self.rows):
            if not self.done[i]:
                self._finish(i, "" if g.cancelled.is_set() else self._text(i),
                             "cancelled" if g.cancelled.is_set() else reason)

    def fail_rest(self, message: str) -> None:
        for i in range(len(self.rows)):
            self.fail_row(i, message)


class _Diverged(Exception):
    """A row run again alone did not reproduce the text it had already streamed."""


def control_tokens(tokenizer) -> re.Pattern[str] | None:
    """A pattern matching every special token of ``tokenizer`` written out as text, longest first."""
    specials = set(tokenizer.all_special_tokens)
    specials |= {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
    specials = sorted((t for t in specials if t), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in specials)) if specials else None
