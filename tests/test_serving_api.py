"""The model server through the real `openai` client and plain HTTP, against a real uvicorn server."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import openai
import pytest
from serving_fixtures import (  # noqa: F401
    make_adapter,
    rehash,
    running_server,
    serving_settings,
    small_base_model,
    spool_lines,
)

ADMIN = {"Authorization": "Bearer test-admin-key"}
QUESTION = [{"role": "user", "content": "How much does the Plus plan cost?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_base_model):  # noqa: F811
    settings = serving_settings(tmp_path_factory.mktemp("serve-api"), small_base_model,
                                max_request_bytes=20_000, max_tokens_limit=480, batch_window_ms=30,
                                spool_segment_bytes=8_000)
    make_adapter(settings, "v1", seed=1)
    make_adapter(settings, "v2", seed=2)
    with running_server(settings, production_hint="v1") as url:
        yield settings, url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[1] + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_and_a_completion_attributed_and_spooled(server, client):
    settings, _ = server
    assert [m.id for m in client.models.list()] == ["base", "production", "v1"]
    reply = client.chat.completions.create(model="production", messages=QUESTION, max_tokens=6, temperature=0)
    assert reply.model == "v1"
    assert reply.id.startswith("chatcmpl-")
    assert reply.usage.completion_tokens == 6 and reply.choices[0].finish_reason == "length"
    assert reply.usage.prompt_tokens > 0
    logged = [line for line in spool_lines(settings) if line.get("response", {}).get("id") == reply.id]
    assert len(logged) == 1
    assert logged[0]["adapter"] == "v1"
    assert logged[0]["response"]["choices"][0]["message"]["content"] == reply.choices[0].message.content
    assert logged[0]["request"]["messages"] == QUESTION and logged[0]["latency_ms"] > 0


def test_stream_matches_non_stream_and_reports_usage(client):
    whole = client.chat.completions.create(model="base", messages=QUESTION, max_tokens=8, temperature=0)
    chunks = list(client.chat.completions.create(model="base", messages=QUESTION, max_tokens=8, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert {c.model for c in chunks} == {"base"} and len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 8


def test_stop_strings_cut_the_answer(client):
    free = client.chat.completions.create(model="v1", messages=QUESTION, max_tokens=12, temperature=0)
    text = free.choices[0].message.content
    stop = text[len(text) // 2: len(text) // 2 + 2]
    cut = client.chat.completions.create(model="v1", messages=QUESTION, max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]


def test_seeded_sampling_repeats_and_adapters_differ(client):
    def ask(model, seed):
        return client.chat.completions.create(model=model, messages=QUESTION, max_tokens=8, temperature=1.0,
                                              top_p=0.9, seed=seed).choices[0].message.content

    assert ask("v1", 7) == ask("v1", 7)
    greedy = {m: client.chat.completions.create(model=m, messages=QUESTION, max_tokens=8, temperature=0)
              .choices[0].message.content for m in ("base", "v1")}
    assert greedy["base"] != greedy["v1"]


def test_concurrent_requests_share_one_generate_call(server, client):
    def batch_stats():
        text = httpx.get(server[1] + "/metrics").text
        return tuple(float(line.split()[-1]) for line in text.splitlines()
                     if line.startswith(("flywheel_batch_size_count", "flywheel_batch_size_sum")))

    calls_before, rows_before = batch_stats()
    threads = [threading.Thread(target=client.chat.completions.create,
                                kwargs=dict(model=m, messages=QUESTION, max_tokens=4, temperature=0))
               for m in ("base", "v1") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls, rows = batch_stats()
    assert rows - rows_before == 8
    assert calls - calls_before < 8  # some requests ran together (mixed adapters in one batch)


def test_openai_shaped_errors(server, client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="v42", messages=QUESTION, max_tokens=2)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="base", messages=QUESTION, max_tokens=100_000)
    assert err.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="base", messages=QUESTION, n=2)
    assert err.value.param == "n"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="base", messages=[{"role": "wizard", "content": "hi"}])
    assert err.value.param == "messages.0.role"
    with pytest.raises(openai.BadRequestError) as err:  # small in bytes, too long for the model's context
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": "note " * 2000}])
    assert err.value.code == "context_length_exceeded"


def test_oversized_request_is_refused_and_the_server_goes_on(server, client):
    big = [{"role": "user", "content": "x" * 30_000}]
    response = httpx.post(server[1] + "/v1/chat/completions", json={"model": "base", "messages": big})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunked():
        yield b'{"model": "base", "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(server[1] + "/v1/chat/completions", content=chunked(),
                          headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert client.chat.completions.create(model="base", messages=QUESTION, max_tokens=2).choices


def test_feedback_is_validated_and_spooled(server, client):
    settings, url = server
    reply = client.chat.completions.create(model="production", messages=QUESTION, max_tokens=3, temperature=0)
    ok = httpx.post(url + "/v1/feedback", json={"interaction_id": reply.id, "kind": "thumb", "value": "down",
                                                "user": "ann"})
    assert ok.status_code == 200, ok.text
    correction = {"interaction_id": reply.id, "kind": "correction", "text": "The Plus plan costs 8 dollars."}
    assert httpx.post(url + "/v1/feedback", json=correction).status_code == 200
    spooled = [line for line in spool_lines(settings) if line.get("interaction_id") == reply.id]
    assert [(f["kind"], f["value"]) for f in spooled] == [("thumb", -1.0), ("correction", None)]
    from flywheel.records import parse_record

    assert parse_record(spooled[0]).id == ok.json()["id"]  # the id returned is the one the warehouse will hold

    cases = [({"kind": "thumb", "value": 1}, "interaction_id"),
             ({"interaction_id": reply.id, "kind": "applause"}, "kind"),
             ({"interaction_id": reply.id, "kind": "rating", "value": 9}, "value"),
             ({"interaction_id": reply.id, "kind": "correction"}, "text"),
             ({"interaction_id": reply.id, "kind": "thumb", "value": 1, "colour": "red"}, "colour")]
    for body, field in cases:
        response = httpx.post(url + "/v1/feedback", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["param"] == field and field in response.json()["error"]["message"]
    assert httpx.post(url + "/v1/feedback", content=b"{not json").status_code == 400


def test_admin_requires_the_admin_key(server):
    _, url = server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-admin-key"}):
        for method, path in (("GET", "/admin/adapters"), ("POST", "/admin/promote/v2"), ("POST", "/admin/rollback")):
            response = httpx.request(method, url + path, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert response.json()["error"]["type"] == "authentication_error"
    assert httpx.get(url + "/admin/adapters", headers=ADMIN).json()["production"] == "v1"


def test_adapter_paths_stay_inside_the_registry(server, tmp_path):
    settings, url = server
    outside = tmp_path / "outside"
    shutil.copytree(settings.adapters_dir / "v2", outside)
    (settings.adapters_dir / "v9").symlink_to(outside, target_is_directory=True)
    for version in ("..%2F..%2Fetc", "v1%2F..%2F..%2Fmodels", "%2Etmp", "v9"):
        response = httpx.post(f"{url}/admin/promote/{version}", headers=ADMIN)
        assert response.status_code in (404, 409), (version, response.text)
        if response.status_code == 409:
            assert ("not of the form vK" in response.json()["error"]["message"]
                    or "outside the registry" in response.json()["error"]["message"])
    assert "outside the registry" in httpx.post(f"{url}/admin/promote/v9", headers=ADMIN).json()["error"]["message"]
    assert httpx.get(url + "/admin/adapters", headers=ADMIN).json()["production"] == "v1"


@pytest.mark.parametrize("damage", ["garbage", "nan", "wrong_shape"])
def test_corrupt_adapter_is_refused_and_production_keeps_serving(server, client, damage):
    import torch
    from safetensors.torch import load_file, save_file

    settings, url = server
    version = {"garbage": "v6", "nan": "v7", "wrong_shape": "v8"}[damage]
    target = settings.adapters_dir / version
    shutil.copytree(settings.adapters_dir / "v2", target)
    weights = target / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    if damage == "garbage":  # changed on disk after registration
        weights.write_bytes(b"\x00not a safetensors file" * 10)
    elif damage == "nan":  # a diverged run, registered as it was
        save_file({k: torch.full_like(v, float("nan")) for k, v in tensors.items()}, str(weights))
        rehash(target)
    else:  # trained for another base model
        wider = {k: torch.zeros(v.shape[0], v.shape[1] + 3) if "lora_A" in k else torch.zeros(v.shape[0] + 3, v.shape[1])
                 for k, v in tensors.items()}
        save_file(wider, str(weights))
        rehash(target)
    before = client.chat.completions.create(model="production", messages=QUESTION, max_tokens=5, temperature=0)
    response = httpx.post(f"{url}/admin/promote/{version}", headers=ADMIN)
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "adapter_refused" and version in message
    assert {"garbage": "changed since registration", "nan": "NaN", "wrong_shape": "wrong base model"}[damage] in message
    state = httpx.get(url + "/admin/adapters", headers=ADMIN).json()
    assert state["production"] == "v1" and version not in state["loaded"]
    after = client.chat.completions.create(model="production", messages=QUESTION, max_tokens=5, temperature=0)
    assert after.model == "v1" and after.choices[0].message.content == before.choices[0].message.content


def test_client_disconnect_mid_stream_stops_generation(server, client):
    from transformers import AutoTokenizer

    settings, url = server
    eos = AutoTokenizer.from_pretrained(settings.train.base_model).eos_token_id
    no_end = {"model": "base", "messages": QUESTION, "max_tokens": 400, "temperature": 0,
              "logit_bias": {str(eos): -100}}
    started = time.perf_counter()
    full = httpx.post(url + "/v1/chat/completions", json=no_end, timeout=300).json()
    full_seconds = time.perf_counter() - started
    assert full["choices"][0]["finish_reason"] == "length" and full["usage"]["completion_tokens"] == 400

    with httpx.stream("POST", url + "/v1/chat/completions", json={**no_end, "stream": True}, timeout=60) as stream:
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        stream_id = json.loads(first[6:])["id"]
        next(lines)
    left = time.perf_counter()
    while httpx.get(url + "/health").json()["generating"]:
        time.sleep(0.01)
    assert time.perf_counter() - left < full_seconds / 2  # stopped, not run to its 400 tokens
    assert "flywheel_generations_cancelled_total 1.0" in httpx.get(url + "/metrics").text
    lines = spool_lines(settings)  # every line still decodes
    assert not [line for line in lines if line.get("response", {}).get("id") == stream_id]
    assert client.chat.completions.create(model="base", messages=QUESTION, max_tokens=2).choices


def test_health_and_prometheus_metrics(server, client):
    _, url = server
    client.chat.completions.create(model="production", messages=QUESTION, max_tokens=2)
    health = httpx.get(url + "/health").json()
    assert health["status"] == "ok" and health["production"] == "v1"
    text = httpx.get(url + "/metrics").text
    assert 'flywheel_production_adapter{version="v1"} 1.0' in text
    assert 'flywheel_requests_total{route="/v1/chat/completions",status="200"}' in text
    assert 'flywheel_completion_latency_seconds_bucket{adapter="v1",le="+Inf",stream="false"}' in text
    assert 'flywheel_tokens_total{kind="completion"}' in text


def test_spooled_traffic_is_ingested_by_collect(server):
    from collectors.ingest import collect
    from flywheel.warehouse import connect

    settings, _ = server
    assert len(list(settings.spool_dir.glob("server-*.jsonl"))) > 1  # segments rotate at serve.spool_segment_bytes
    lines = spool_lines(settings)
    interactions = {line["response"]["id"] for line in lines if "response" in line}
    summary = collect(settings)
    assert summary.interactions_new == len(interactions) and summary.feedback_new >= 2
    with connect(settings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
        rows = dict(con.execute("SELECT id, adapter FROM interactions").fetchall())
    assert set(rows) == interactions and set(rows.values()) <= {"base", "v1"}
