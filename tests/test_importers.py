"""Import of existing datasets (Alpaca, ShareGPT, OpenAI messages, DPO triples) as seed or replay data."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from curation.importers import ImportError_, import_file, to_example
from flywheel.warehouse import connect


def test_each_format_becomes_an_sft_or_dpo_payload() -> None:
    assert to_example({"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour"},
                      "auto") == ("sft", {"messages": [{"role": "user", "content": "Translate to French\n\nGood morning"},
                                                       {"role": "assistant", "content": "Bonjour"}]})
    kind, payload = to_example({"conversations": [{"from": "system", "value": "Be brief."},
                                                  {"from": "human", "value": "Offline mode?"},
                                                  {"from": "gpt", "value": "Yes, it works offline."}]}, "sharegpt")
    assert kind == "sft" and [m["role"] for m in payload["messages"]] == ["system", "user", "assistant"]
    kind, payload = to_example({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                                             {"role": "assistant", "content": "Hello!"}]}, "auto")
    assert payload["messages"][0] == {"role": "user", "content": "Hi"}
    kind, payload = to_example({"prompt": "Plus price?", "chosen": "8 dollars.", "rejected": "5 dollars."}, "auto")
    assert kind == "dpo" and payload == {"prompt": [{"role": "user", "content": "Plus price?"}],
                                         "chosen": [{"role": "assistant", "content": "8 dollars."}],
                                         "rejected": [{"role": "assistant", "content": "5 dollars."}]}


@pytest.mark.parametrize("record,fmt,message", [
    ({"instruction": "Say hi"}, "alpaca", "output: missing or empty"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "sharegpt", "conversations.0.from: unknown speaker"),
    ({"messages": [{"role": "user", "content": "only a question"}]}, "messages", "last turn must be"),
    ({"prompt": "q", "chosen": [{"role": "user", "content": "x"}], "rejected": "r"}, "dpo", "chosen: the last"),
    ({"something": "else"}, "auto", "record: unknown format"),
    (["not", "an", "object"], "auto", "record: expected a JSON object"),
])
def test_bad_records_get_a_reason_naming_the_field(record, fmt: str, message: str) -> None:
    with pytest.raises(ImportError_, match=message):
        to_example(record, fmt)


def test_import_scrubs_quarantines_and_is_idempotent(settings, tmp_path: Path) -> None:
    path = tmp_path / "seed.jsonl"
    rows = [{"instruction": "My email is jane.doe@example.com, how do I reset my password?",
             "output": "Click Forgot password on the sign-in page."},
            {"prompt": "Student pricing?", "chosen": "Students get 50 percent off Plus.", "rejected": "No discount."},
            {"instruction": "no output"}]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"{broken\n")
    result = import_file(settings, path, use_as="seed")
    assert (result.read, result.added, result.quarantined) == (4, 2, 2)
    assert result.by_kind == {"sft": 1, "dpo": 1}
    with connect(settings, read_only=True) as con:
        payloads = [r[0] for r in con.execute("SELECT payload FROM imported_examples").fetchall()]
        reasons = sorted(r[0] for r in con.execute("SELECT reason FROM quarantine WHERE stage = 'import'").fetchall())
    assert not any("jane.doe@example.com" in p for p in payloads)
    assert reasons[0].startswith("line 4: not valid JSON") and reasons[1].startswith("output: missing")
    again = import_file(settings, path, use_as="seed")
    assert again.added == 0 and again.already_present == 2
