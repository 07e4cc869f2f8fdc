"""Write a dataset version straight from ``demo.domain``, in the layout the curation stage produces.

Training tests and benchmarks use it to get a small, correct dataset without running the whole curation
pipeline; a ``corrupt`` dataset trains on deliberately wrong corrections (another fact's answer), to make a
worse adapter. Its held-out split keeps the right answers: the reviewed answers a gate judges against.
"""

from __future__ import annotations

from pathlib import Path

from demo import domain
from flywheel.settings import Settings
from flywheel.warehouse import content_id
from training.common import write_dataset_version


def domain_examples(version: str, corrupt: bool = False) -> tuple[list[dict], list[dict]]:
    """SFT rows and DPO pairs for every fact: the right answer (or, when ``corrupt``, another fact's in the
    train split).

    The eval split is the last training paraphrase of each fact, so held-out metrics measure the same
    facts on a question the adapter did not train on.
    """
    sft, dpo = [], []
    for n, fact in enumerate(domain.FACTS):
        for i, question in enumerate(fact.questions):
            split = "eval" if i == len(fact.questions) - 1 else "train"
            good, bad = fact.answer, fact.wrong
            if corrupt and split == "train":  # confidently wrong everywhere, known facts included
                good, bad = domain.FACTS[(n + 1) % len(domain.FACTS)].answer, fact.answer
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
    sft, dpo = domain_examples(version, corrupt)
    return write_dataset_version(settings, version, sft, dpo)
