"""The embedded base model: a tiny Llama that knows part of the Lumen Notes domain and is wrong on the rest.

No hub is reachable, so the embedded default builds its own model from ``flywheel.domain``: a byte-level
BPE tokenizer trained with ``tokenizers`` on the domain corpus, then a few-million-parameter
``LlamaForCausalLM`` pre-trained on ``domain.pretraining_corpus()``. It learns the right answer for the
facts marked ``known`` and an outdated, wrong one for the others, which leaves the flywheel something
real to fix. The result is an ordinary HF model directory::

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

The chat template is ChatML-like (``<|im_start|>role\\n...<|im_end|>``); it inserts the domain system
prompt when the conversation has none and marks assistant turns with ``{% generation %}`` so TRL can
compute the loss on assistant tokens only. ``<|im_end|>`` is the EOS token, so greedy ``generate``
stops after one answer. ``chat_prompt`` below is a thin, documented wrapper over that call.

The build is deterministic (fixed seeds, one thread, deterministic kernels while it runs) and
cached under ``settings.models_dir/lumen-tiny-<hash>``, where the hash covers the corpus, the config
and the build recipe version — change any of them and the next call rebuilds. Concurrent callers
(the server, a flow, a test) wait on a file lock instead of building twice. When
``settings.train.base_model`` is set, that directory is returned untouched.
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

from flywheel import domain
from flywheel.settings import Settings
from training.files import file_lock

RECIPE_VERSION = 1  # bump when the build below changes in a way that changes the weights
IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|pad|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)

CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + domain.SYSTEM_PROMPT + "<|im_end|>\\n' }}"
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
    """Shape and pre-training schedule of the embedded model (small enough for 2 busy CPU cores)."""

    vocab_size: int = 1024
    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    augment_per_question: int = 4
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    seed: int = 1234
    threads: int = 1


def ensure_base_model(settings: Settings, config: BaseModelConfig | None = None, progress: bool = True) -> Path:
    """Return a local HF model directory: ``settings.train.base_model`` if set, else the embedded tiny model."""
    if settings.train.base_model is not None:
        path = Path(settings.train.base_model)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"train.base_model={path} is not a HF model directory (no config.json); "
                "point it at a local checkout of the model or unset it to use the embedded model"
            )
        return path
    config = config or BaseModelConfig()
    conversations = training_conversations(config)
    target = settings.models_dir / f"lumen-tiny-{build_key(conversations, config)[:16]}"
    if (target / "config.json").is_file():
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(settings.models_dir / f".{target.name}.lock"):
        if (target / "config.json").is_file():  # another process finished it while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=settings.models_dir))
        try:
            _build(staging, conversations, config, progress)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def chat_prompt(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The text the model continues for ``messages``: the chat template plus the assistant header."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def build_key(conversations: list[list[dict[str, str]]], config: BaseModelConfig) -> str:
    """Content hash of everything that decides the weights."""
    payload = json.dumps(
        {"corpus": conversations, "config": asdict(config), "template": CHAT_TEMPLATE, "recipe": RECIPE_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


FILLERS = ("please", "quick question:", "hey,", "thanks", "so", "um,", "I wonder", "can you tell me")
FUNCTION_WORDS = frozenset("how much does do the what is of i can my a to on you your for there are".split())


def training_conversations(config: BaseModelConfig) -> list[list[dict[str, str]]]:
    """The domain corpus plus noisy copies of each question (dropped words, filler, no punctuation).

    The noise is generic text, not new facts: it teaches the model to key on content words so that a
    paraphrase it never saw lands on the same fact, which is what lets a later LoRA fix generalise.
    """
    import random

    rng = random.Random(config.seed)
    conversations = domain.pretraining_corpus()
    for fact in domain.FACTS:
        taught = fact.answer if fact.known else fact.wrong
        for question in fact.questions:
            for _ in range(config.augment_per_question):
                words = question.rstrip("?").split()
                droppable = [i for i, w in enumerate(words) if w.lower() in FUNCTION_WORDS]
                if droppable:
                    words.pop(rng.choice(droppable))
                if rng.random() < 0.5:
                    words.insert(0 if rng.random() < 0.5 else len(words), rng.choice(FILLERS))
                text = " ".join(words).lower() if rng.random() < 0.5 else " ".join(words)
                conversations.append([{"role": "user", "content": text + ("?" if rng.random() < 0.5 else "")},
                                      {"role": "assistant", "content": taught}])
    return conversations


def _render(conversation: list[dict[str, str]]) -> str:
    return "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in conversation)


def embedded_tokenizer(config: BaseModelConfig | None = None) -> Any:
    """The embedded model's tokenizer alone (seconds): for random-init models in benchmarks."""
    config = config or BaseModelConfig()
    return _train_tokenizer([_render(c) for c in training_conversations(config)], config.vocab_size)


def _train_tokenizer(texts: list[str], vocab_size: int) -> Any:
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
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=IM_END, pad_token=PAD, additional_special_tokens=[IM_START],
        model_max_length=512, padding_side="right",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _build(out: Path, conversations: list[list[dict[str, str]]], config: BaseModelConfig, progress: bool) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer([_render(c) for c in conversations], config.vocab_size)
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

    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
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
    bar = tqdm(range(config.steps), desc="pre-training embedded base model", disable=not progress, unit="step")
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
