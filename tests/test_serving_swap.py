"""Hot-swap under load, restart persistence, and deploy/rollback recorded in the warehouse."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import openai
import pytest
from serving_fixtures import make_adapter, running_server, serving_settings, small_base_model, spool_lines  # noqa: F401

ADMIN = {"Authorization": "Bearer test-admin-key"}
QUESTIONS = ["How much does the Plus plan cost?", "Can I get a refund?", "Does Lumen work offline at all?"]
CLIENTS = 12


@pytest.fixture(scope="module")
def settings(tmp_path_factory, small_base_model):  # noqa: F811
    settings = serving_settings(tmp_path_factory.mktemp("serve-swap"), small_base_model, batch_window_ms=20,
                                api_key="infer-key", feedback_key="feedback-key")
    for n in (1, 2, 3):
        make_adapter(settings, f"v{n}", seed=n)
    return settings


def _client(url: str, key: str = "infer-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_streams_survive_two_swaps_and_a_rollback_then_a_restart_keeps_production(settings):
    results: list[tuple[str, set[str], str, str]] = []  # question, models seen, text, id
    errors: list[BaseException] = []
    done = threading.Event()

    def user(n: int, url: str) -> None:
        client = _client(url)
        question = QUESTIONS[n % len(QUESTIONS)]
        while not done.is_set():
            try:
                chunks = list(client.chat.completions.create(
                    model="production", messages=[{"role": "user", "content": question}], max_tokens=10,
                    temperature=0, stream=True))
            except BaseException as exc:  # every failure counts
                errors.append(exc)
                return
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            results.append((question, {c.model for c in chunks}, text, chunks[0].id))

    def answered_by(version: str, count: int) -> None:
        """Wait until ``count`` answers came from ``version`` (so each swap happens under live traffic)."""
        deadline = time.monotonic() + 120
        while (sum(models == {version} for _, models, _, _ in list(results)) < count and not errors
               and time.monotonic() < deadline):
            time.sleep(0.01)

    with running_server(settings, production_hint="v1") as url:
        users = [threading.Thread(target=user, args=(n, url)) for n in range(CLIENTS)]
        for t in users:
            t.start()
        steps = []
        try:
            for before, change in (("v1", "/admin/promote/v2"), ("v2", "/admin/promote/v3"), ("v3", "/admin/rollback")):
                answered_by(before, CLIENTS // 2)
                response = httpx.post(url + change, headers=ADMIN, timeout=120)
                steps.append((response.status_code, response.json().get("production")))
            answered_by("v2", CLIENTS)  # after the rollback, v2 answers again
        finally:
            done.set()
            for t in users:
                t.join(120)
        assert not errors, errors[:3]
        assert steps == [(200, "v2"), (200, "v3"), (200, "v2")]
        assert all(len(models) == 1 for _, models, _, _ in results)  # one adapter per response
        by_version = Counter(next(iter(models)) for _, models, _, _ in results)
        assert set(by_version) == {"v1", "v2", "v3"}, by_version

        client = _client(url)
        expected = {(q, v): client.chat.completions.create(
            model=v, messages=[{"role": "user", "content": q}], max_tokens=10, temperature=0).choices[0].message.content
            for q in QUESTIONS for v in by_version}
        assert len(set(expected.values())) > len(QUESTIONS)  # the versions really answer differently
        for question, models, text, _ in results:  # each answer is exactly what its version generates
            assert text == expected[(question, next(iter(models)))]

        spooled = {line["response"]["id"]: line["adapter"] for line in spool_lines(settings) if "response" in line}
        assert all(spooled[rid] == next(iter(models)) for _, models, _, rid in results)

    with running_server(settings) as url:  # a restart serves the same production adapter
        state = httpx.get(url + "/admin/adapters", headers=ADMIN).json()
        assert state["production"] == "v2" and state["history"] == ["v1"]
        assert state["loaded"] == ["v1", "v2", "v3"]
        reply = _client(url).chat.completions.create(model="production", max_tokens=10, temperature=0,
                                                     messages=[{"role": "user", "content": QUESTIONS[0]}])
        assert reply.model == "v2" and reply.choices[0].message.content == expected[(QUESTIONS[0], "v2")]


def test_inference_and_feedback_keys(settings):
    with running_server(settings) as url:
        with pytest.raises(openai.AuthenticationError):
            _client(url, key="wrong").chat.completions.create(model="base", max_tokens=2,
                                                              messages=[{"role": "user", "content": "hi"}])
        reply = _client(url).chat.completions.create(model="base", max_tokens=2,
                                                     messages=[{"role": "user", "content": "hi"}])
        body = {"interaction_id": reply.id, "kind": "rating", "value": 4}
        assert httpx.post(url + "/v1/feedback", json=body).status_code == 401
        assert httpx.post(url + "/v1/feedback", json=body,
                          headers={"Authorization": "Bearer infer-key"}).status_code == 401
        assert httpx.post(url + "/v1/feedback", json=body,
                          headers={"Authorization": "Bearer feedback-key"}).status_code == 200


def test_deploy_and_rollback_are_recorded_in_the_warehouse(settings, monkeypatch):
    from typer.testing import CliRunner

    from flywheel.cli import app
    from flywheel.warehouse import connect
    from serving.deploy import DeployError, deploy, rollback
    from training.registry import previous_production, production_version

    def statuses():
        with connect(settings, read_only=True) as con:
            return dict(con.execute("SELECT version, status FROM adapters").fetchall())

    broken = make_adapter(settings, "v4", seed=4)
    (broken / "adapter_model.safetensors").write_bytes(b"truncated")
    with running_server(settings) as url:
        assert deploy(settings, "v3", url=url)["version"] == "v3"
        assert statuses()["v3"] == "production" and production_version(settings) == "v3"
        deploy(settings, "v1", url=url)
        assert statuses() == {"v1": "production", "v2": "candidate", "v3": "retired", "v4": "candidate"}
        assert previous_production(settings) == "v3"
        assert rollback(settings, url=url)["version"] == "v3"
        assert statuses()["v3"] == "production" and statuses()["v1"] == "retired"
        with pytest.raises(DeployError, match="v4"):  # registered, then damaged: the server refuses it
            deploy(settings, "v4", url=url)
        with pytest.raises(DeployError, match="not registered"):  # never reaches the server
            deploy(settings, "v9", url=url)
        assert production_version(settings) == "v3"
        assert httpx.get(url + "/admin/adapters", headers=ADMIN).json()["production"] == "v3"

        monkeypatch.setenv("FLYWHEEL_HOME", str(settings.home))
        monkeypatch.setenv("FLYWHEEL_SERVE__ADMIN_KEY", "test-admin-key")
        runner = CliRunner()
        result = runner.invoke(app, ["deploy", "--adapter", "v2", "--url", url])
        assert result.exit_code == 0, result.output
        assert "deployed v2" in result.output and statuses()["v2"] == "production"
        result = runner.invoke(app, ["rollback", "--url", url])
        assert result.exit_code == 0 and "rolled back to v3" in result.output
        result = runner.invoke(app, ["deploy", "--adapter", "../v1", "--url", url])
        assert result.exit_code == 1 and "not of the form vK" in result.output

    with pytest.raises(DeployError, match="no model server answering"):
        rollback(settings, url=url)
    with connect(settings, read_only=True) as con:
        rows = con.execute("SELECT adapter_version, action, status FROM deployments ORDER BY created_at").fetchall()
    assert rows == [("v3", "promote", "succeeded"), ("v1", "promote", "succeeded"), ("v3", "rollback", "succeeded"),
                    ("v4", "promote", "failed"), ("v9", "promote", "failed"), ("v2", "promote", "succeeded"),
                    ("v3", "rollback", "succeeded"), ("../v1", "promote", "failed"), (None, "rollback", "failed")]
