"""Write a dataset version straight from ``flywheel.domain``, in the layout the curation stage produces.

``FLYWHEEL_HOME/datasets/vN/`` holds ``sft/`` and ``dpo/`` (HF ``DatasetDict`` with ``train`` and
``eval`` splits, saved with ``save_to_disk``) plus Parquet copies ``{sft,dpo}-{train,eval}.parquet``. Training tests and
benchmarks use it to get a small, correct dataset without running the whole curation pipeline; a
``corrupt`` dataset teaches wrong answers on purpose, to make a deliberately worse adapter.
"""

from __future__ import annotations

from pathlib import Path

from flywheel import domain
from flywheel.settings import Settings
from flywheel.warehouse import content_id


def domain_examples(version: str, corrupt: bool = False) -> tuple[list[dict], list[dict]]:
    """SFT rows and DPO pairs for every fact: the right answer (or, when ``corrupt``, another fact's).

    The eval split is the last training paraphrase of each fact, so held-out loss measures the same
    facts on a question the adapter did not train on.
    """
    sft, dpo = [], []
    for n, fact in enumerate(domain.FACTS):
        good, bad = fact.answer, fact.wrong
        if corrupt:  # another fact's answer: confidently wrong everywhere, known facts included
            good, bad = domain.FACTS[(n + 1) % len(domain.FACTS)].answer, fact.answer
        for i, question in enumerate(fact.questions):
            split = "eval" if i == len(fact.questions) - 1 else "train"
            prompt = [{"role": "system", "content": domain.SYSTEM_PROMPT}, {"role": "user", "content": question}]
            source = [content_id("domain", fact.id, question)]
            sft.append({"id": content_id("sft", version, fact.id, question, good), "split": split,
                        "messages": [*prompt, {"role": "assistant", "content": good}],
                        "source_interactions": source, "dataset_version": version})
            if good != bad:
                dpo.append({"id": content_id("dpo", version, fact.id, question, good), "split": split,
                            "prompt": prompt, "chosen": [{"role": "assistant", "content": good}],
                            "rejected": [{"role": "assistant", "content": bad}],
                            "source_interactions": source, "dataset_version": version})
    return sft, dpo


def write_domain_dataset(settings: Settings, version: str = "v1", corrupt: bool = False) -> Path:
    """Write ``datasets/<version>/`` from the domain facts; returns the directory."""
    from datasets import Dataset, DatasetDict

    out = settings.datasets_dir / version
    sft, dpo = domain_examples(version, corrupt)
    for name, rows in (("sft", sft), ("dpo", dpo)):
        splits = DatasetDict({
            split: Dataset.from_list([{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split])
            for split in ("train", "eval")
        })
        splits.save_to_disk(str(out / name))
        for split, ds in splits.items():
            ds.to_parquet(str(out / f"{name}-{split}.parquet"))
    return out
