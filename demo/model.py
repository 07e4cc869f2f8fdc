"""The demo's tiny model: a few-million-parameter Llama pre-trained on the Lumen Notes corpus.

It answers half of the product's facts right and the rest with an outdated, wrong answer (see
``demo.domain``), and nothing else; built with the core's ``build_tiny_chat_model`` and cached under
``settings.models_dir/lumen-tiny-<hash>``. ``flywheel demo --model smollm2`` uses the real SmolLM2
instead, which knows nothing about Lumen Notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demo.domain import SYSTEM_PROMPT, augmented_corpus
from flywheel.settings import Settings
from training.base_model import BaseModelConfig, build_tiny_chat_model, chat_template, train_tokenizer

AUGMENT_PER_QUESTION = 4


def demo_corpus(config: BaseModelConfig) -> list[list[dict[str, str]]]:
    return augmented_corpus(AUGMENT_PER_QUESTION, config.seed)


def build_demo_model(settings: Settings, config: BaseModelConfig | None = None, progress: bool = True) -> Path:
    """The tiny Lumen Notes model's directory, built on first use."""
    config = config or BaseModelConfig()
    return build_tiny_chat_model(settings.models_dir, "lumen-tiny", demo_corpus(config), SYSTEM_PROMPT, config,
                                 progress)


def demo_tokenizer(config: BaseModelConfig | None = None) -> Any:
    """The demo model's tokenizer alone (seconds): for random-init models in benchmarks."""
    config = config or BaseModelConfig()
    return train_tokenizer(demo_corpus(config), config.vocab_size, chat_template(SYSTEM_PROMPT))
