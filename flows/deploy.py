"""Prefect flow ``deploy``: promote the gated adapter on the model server, smoke-check it, roll back on failure.

Production only changes when the server accepted the adapter (it loads and smoke-tests it itself
before the swap) *and* a real request through the public API is then answered by that version; if
the check fails the previous adapter is put back and the flow run ends Failed, so ops see it in the UI.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flywheel.settings import Settings, load_settings
from serving.deploy import default_url, rollback
from serving.deploy import deploy as deploy_adapter


class SmokeCheckFailed(RuntimeError):
    """The promoted adapter did not answer a plain request correctly attributed to it."""


def smoke_check(settings: Settings, url: str, version: str) -> dict[str, Any]:
    """One chat completion (``gate.smoke_prompt``) on the ``production`` alias must succeed, be non-empty and
    come from ``version``."""
    headers = {}
    if settings.serve.api_key is not None:
        headers["Authorization"] = f"Bearer {settings.serve.api_key.get_secret_value()}"
    body = {"model": "production", "max_tokens": 16, "temperature": 0.0,
            "messages": [{"role": "user", "content": settings.gate.smoke_prompt}]}
    try:
        response = httpx.post(f"{url.rstrip('/')}/v1/chat/completions", json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise SmokeCheckFailed(f"model server at {url} did not answer: {exc}") from None
    served_by = response.headers.get("x-flywheel-adapter")
    if response.status_code != 200:
        raise SmokeCheckFailed(f"HTTP {response.status_code} from {url}: {response.text[:200]}")
    text = response.json()["choices"][0]["message"]["content"] or ""
    if served_by != version or not text.strip():
        raise SmokeCheckFailed(f"expected a non-empty answer from {version}, got {text!r} from {served_by}")
    return {"served_by": served_by, "answer": text}


@task(retries=2, retry_delay_seconds=[5, 20])
def promote(version: str, url: str) -> dict[str, Any]:
    return deploy_adapter(load_settings(), version, url=url)


@task
def check(version: str, url: str) -> dict[str, Any]:
    return smoke_check(load_settings(), url, version)


@task
def roll_back(url: str) -> dict[str, Any]:
    return rollback(load_settings(), url=url)


@flow(name="deploy", log_prints=True)
def deploy_flow(version: str, url: str | None = None) -> dict[str, Any]:
    """Make ``version`` production at ``url`` (default: the configured model server)."""
    url = url or default_url(load_settings())
    promoted = promote(version, url)
    try:
        checked = check(version, url)
    except SmokeCheckFailed as exc:
        restored = roll_back(url)
        create_markdown_artifact(
            key="deployment-result",
            markdown=f"## Deployment of {version} rolled back\n\nSmoke check failed: {exc}\n\n"
                     f"Production is back on **{restored['version'] or 'base'}**.")
        raise
    create_markdown_artifact(
        key="deployment-result",
        markdown=f"## {version} is live\n\n| | |\n|---|---|\n| server | {url} |\n"
                 f"| previous | {promoted.get('previous') or 'base'} |\n| smoke answer | {checked['answer']!r} |")
    print(f"deployed {version} to {url}; smoke check answered {checked['answer']!r}")
    return {"version": version, "previous": promoted.get("previous"), "url": url, "smoke": checked}
