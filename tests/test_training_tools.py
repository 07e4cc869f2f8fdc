"""Rows with tool calls and tool schemas (imported from LLaMA-Factory / OpenAI data) train: the SFT and DPO
recipes hand ``tools`` and each turn's ``tool_calls`` to the chat template (TRL passes a row's tools), on the
small real model; versions written before the tools column still mix in as replay."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from training_fixtures import recipe, train_settings

from curation.datasets import VersionContents, public_row, write_version
from curation.dedup import DedupIndex
from demo.dataset import write_domain_dataset
from training.config import load_config

pytest_plugins = ("training_fixtures",)

TOOLS = orjson.dumps([{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]).decode()
# A template that shows tools and tool calls (as Qwen's and Llama's do); the embedded one renders neither.
TOOL_TEMPLATE = (
    "{%- if tools %}{{ '<|im_start|>system\\nTools: ' + (tools | tojson) + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}{% generation %}"
    "{{ message['content'] }}{%- for call in message.get('tool_calls') or [] %}"
    "{{ '<tool_call>' + call['function']['name'] + call['function']['arguments'] + '</tool_call>' }}"
    "{%- endfor %}{{ '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def weather_call(city: str) -> dict:
    return {"type": "function", "function": {"name": "get_weather", "arguments": orjson.dumps({"city": city}).decode()}}


def tool_version(settings, version: str = "v2") -> Path:
    cities = ["Paris", "Rome", "Oslo", "Lima", "Kyiv", "Doha", "Bern", "Quito"]
    sft = [{"id": f"sft-{c}", "kind": "sft", "tools": TOOLS, "messages": [
        {"role": "user", "content": f"Weather in {c}?"},
        {"role": "assistant", "content": "", "tool_calls": [weather_call(c)]},
        {"role": "tool", "content": '{"temp": 20}'},
        {"role": "assistant", "content": f"20 C in {c}."}]} for c in cities]
    sft += [{"id": "sft-plain", "kind": "sft", "messages": [{"role": "user", "content": "Hi"},
                                                           {"role": "assistant", "content": "Hello!"}]}]
    dpo = [{"id": f"dpo-{c}", "kind": "dpo", "tools": TOOLS, "prompt": [{"role": "user", "content": f"Weather in {c}?"}],
            "chosen": [{"role": "assistant", "content": "", "tool_calls": [weather_call(c)]}],
            "rejected": [{"role": "assistant", "content": "Sunny, I guess."}]} for c in cities]
    rows = {"sft": {"train": [public_row(r, version) for r in sft], "eval": []},
            "dpo": {"train": [public_row(r, version) for r in dpo], "eval": []}}
    write_version(settings.datasets_dir / version, VersionContents(version, rows), DedupIndex(), settings.dedup)
    return settings.datasets_dir / version


def test_sft_and_dpo_train_on_rows_with_tools_and_tool_calls(home, small_model, tmp_path):
    from training.dpo import build_dpo_trainer
    from training.sft import build_sft_trainer

    model = tmp_path / "model"
    shutil.copytree(small_model, model)
    (model / "chat_template.jinja").write_text(TOOL_TEMPLATE)
    settings = train_settings(home, model)
    data = tool_version(settings)
    config = load_config(recipe(tmp_path / "r.yaml", replay_share=0.0, sft={"max_steps": 1, "packing": False},
                                dpo={"max_steps": 1, "batch_size": 4}))

    sft = build_sft_trainer(config, model, data, home / "sft", device="cpu")
    rendered = [sft.processing_class.decode(ids) for ids in sft.train_dataset["input_ids"]]
    assert sum('Tools: [{"type": "function"' in t for t in rendered) == 8
    assert any('<tool_call>get_weather{"city":"Paris"}</tool_call>' in t for t in rendered)
    assert any("Hello!" in t and "Tools:" not in t for t in rendered)  # a row without tools gets none
    assert sft.train().training_loss > 0

    dpo = build_dpo_trainer(config, model, data, home / "dpo", sft_adapter=None, device="cpu")
    row = dpo.train_dataset[0]
    chosen = dpo.processing_class.decode(row["chosen_ids"] if "chosen_ids" in row else row["chosen_input_ids"])
    prompt = dpo.processing_class.decode(row["prompt_ids"] if "prompt_ids" in row else row["prompt_input_ids"])
    assert chosen.startswith("<tool_call>get_weather") and "Tools:" in prompt
    assert dpo.train().training_loss > 0


def test_replay_mixes_in_versions_written_before_the_tools_column(home, small_model):
    from training.common import read_split, with_replay

    settings = train_settings(home, small_model)
    old = write_domain_dataset(settings, "v1")  # no tools column, messages without tool_calls
    current = read_split(tool_version(settings), "sft", "train")
    mixed = with_replay(current, "sft", [old], 0.5, seed=3)
    replayed = [r for r in mixed if r["dataset_version"] == "v1"]
    assert len(replayed) == len(current) and all(r["tools"] is None for r in replayed)
    assert sum(r["tools"] == TOOLS for r in mixed) == 8
