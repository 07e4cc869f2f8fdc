"""Read datasets with LLaMA-Factory's own loader and converter, and encode each row with its ``qwen`` template.

Runs under a Python that has ``llamafactory`` installed (it cannot share this project's environment: it pins
datasets<=4, trl<=0.24, peft<=0.18, transformers<=5.6), called by ``benchmarks/llamafactory_formats.py``:

    LF_PYTHON benchmarks/llamafactory_read.py DATA_DIR TOKENIZER_DIR NAME...

Prints one JSON line per row: the dataset name, LLaMA-Factory's aligned ``_system`` / ``_prompt`` /
``_response`` / ``_tools``, and ``encode_error`` (null when its template encoded the row, function calls and
tools included; the message otherwise).
"""

from __future__ import annotations

import json
import sys
import tempfile


def main(data_dir: str, tokenizer_dir: str, names: list[str]) -> None:
    from llamafactory.data.loader import _load_single_dataset
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments

    data_args = DataArguments(dataset_dir=data_dir, template="qwen")
    model_args, training_args = ModelArguments(model_name_or_path=tokenizer_dir), Seq2SeqTrainingArguments(
        output_dir=tempfile.mkdtemp())
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    for name in names:
        attr = get_dataset_list([name], data_dir)[0]
        for row in _load_single_dataset(attr, model_args, data_args, training_args):
            error = None
            try:
                for response in row["_response"] or [None]:
                    if response is None:
                        raise ValueError("LLaMA-Factory skipped the row as broken")
                    template.encode_multiturn(tokenizer, row["_prompt"] + [response], row["_system"], row["_tools"])
            except Exception as exc:  # noqa: BLE001 - any failure is the finding, reported per row
                error = f"{type(exc).__name__}: {exc}"[:300]
            print(json.dumps({"dataset": name, "system": row["_system"], "prompt": row["_prompt"],
                              "response": row["_response"], "tools": row["_tools"], "encode_error": error},
                             ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
