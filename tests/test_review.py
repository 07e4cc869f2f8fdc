"""The review page's security and decision rules, over HTTP against a real warehouse file.

Browser behaviour (keyboard, escaping in a real DOM, screenshots) is in test_review_browser.py.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from review_support import PASSWORD, PII_ID, add_accounts, seed_review_queue, shared_scrubber
from typer.testing import CliRunner

from flywheel.settings import load_settings
from flywheel.warehouse import connect
from serving.review.app import SESSION_COOKIE, SIGN_IN_LIMITS, create_app
from serving.review.auth import SignInThrottle

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REVISION = re.compile(r'name="revision" value="(\d+)"')


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """One seeded warehouse and one app for this module's tests."""
    settings = load_settings(home=tmp_path_factory.mktemp("review") / "home")
    seeded = seed_review_queue(settings)
    add_accounts(settings)
    app = create_app(settings)
    app.state.scrubber = shared_scrubber()
    return settings, seeded, app


def client_for(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


def csrf_of(page: str) -> str:
    return CSRF.search(page).group(1)


def sign_in(app, username: str) -> TestClient:
    client = client_for(app)
    token = csrf_of(client.get("/login").text)
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    return client


def decide(client: TestClient, interaction_id: str, **form: str):
    """Open the item page as this client, then post a decision taken on what it showed."""
    page = client.get(f"/items/{interaction_id}").text
    return client.post(f"/items/{interaction_id}/decision", data={
        "scope": "item", **form, "revision": REVISION.search(page).group(1), "csrf_token": csrf_of(page)})


def queue_row(settings, interaction_id: str) -> tuple:
    with connect(settings) as con:
        return con.execute("SELECT status, reviewer, edited_answer, reason, revision FROM review_queue "
                           "WHERE interaction_id = ?", [interaction_id]).fetchone()


def api_routes(routes) -> list[APIRoute]:
    """Every API route, also those of included routers (FastAPI nests them; the review routers have no prefix)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def concrete_path(route: APIRoute, item_id: str) -> str:
    return route.path.replace("{interaction_id}", item_id).replace("{reviewer}", "alice")


def test_every_route_refuses_anonymous_requests(review):
    settings, seeded, app = review
    item_id = seeded.clusters["c-import"][0]
    client = client_for(app)
    routes = [r for r in api_routes(app.routes) if r.path != "/login"]
    assert {r.path for r in routes} >= {"/", "/items/{interaction_id}", "/items/{interaction_id}/decision",
                                        "/audit", "/audit/{reviewer}", "/logout"}
    for route in routes:
        for method in route.methods:
            resp = client.request(method, concrete_path(route, item_id), data={"action": "accept", "revision": "0"})
            if method == "GET":
                assert resp.status_code == 303, route.path
                assert resp.headers["location"].startswith("/login?next="), route.path
            else:
                assert resp.status_code == 401, route.path
            assert item_id not in resp.text and "Lumen" not in resp.text
    assert queue_row(settings, item_id)[0] == "new"
    assert client.get("/login").status_code == 200  # the one page that answers without a session


def test_form_posts_without_the_csrf_token_are_refused(review):
    settings, seeded, app = review
    item_id = seeded.clusters["c-import"][0]
    anonymous = client_for(app)
    anonymous.get("/login")
    refused = anonymous.post("/login", data={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 403 and SESSION_COOKIE not in refused.headers.get("set-cookie", "")

    alice = sign_in(app, "alice")
    page = alice.get(f"/items/{item_id}")
    assert page.status_code == 200
    revision = REVISION.search(page.text).group(1)
    for token in (None, "", "forged-" + csrf_of(page.text)):
        data = {"action": "reject", "reason": "spam", "revision": revision}
        if token is not None:
            data["csrf_token"] = token
        assert alice.post(f"/items/{item_id}/decision", data=data).status_code == 403
        assert alice.post("/logout", data={} if token is None else {"csrf_token": token}).status_code == 403
    assert queue_row(settings, item_id)[0] == "new"
    assert alice.get("/").status_code == 200  # still signed in: the refused logout did nothing


def test_session_cookie_is_httponly_samesite_and_signed(review):
    _, _, app = review
    client = client_for(app)
    token = csrf_of(client.get("/login").text)
    resp = client.post("/login", data={"username": "lena", "password": PASSWORD, "csrf_token": token})
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert PASSWORD not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = client_for(app)
    forged.cookies.set(SESSION_COOKIE, value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))
    assert forged.get("/").status_code == 303  # a tampered cookie is no session


def test_wrong_password_and_unknown_user_get_the_same_answer(review):
    _, _, app = review
    client = client_for(app)
    answers = []
    for username, password in (("alice", "not the password"), ("mallory", PASSWORD)):
        token = csrf_of(client.get("/login").text)
        resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        answers.append((resp.status_code, "Wrong user name or password." in resp.text))
        assert client.get("/").status_code == 303
    assert answers == [(401, True), (401, True)]


def _fresh_app(settings, clock: list[float]):
    """An app of its own (its own sign-in throttle) whose throttle reads ``clock[0]`` as the time."""
    app = create_app(settings)
    app.state.scrubber = shared_scrubber()
    app.state.sign_in_throttle = SignInThrottle(SIGN_IN_LIMITS, clock=lambda: clock[0])
    return app


def _attempt(client: TestClient, username: str, password: str):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_repeated_failed_sign_ins_lock_that_account_for_fifteen_minutes(review):
    settings, _, _ = review
    clock = [1000.0]
    client = client_for(_fresh_app(settings, clock))
    assert [_attempt(client, "alice", f"guess {i}").status_code for i in range(5)] == [401] * 5
    locked = _attempt(client, "alice", PASSWORD)  # now even the right password waits
    assert locked.status_code == 429 and "Too many failed sign-ins: try again in 15 min." in locked.text
    assert locked.headers["retry-after"] == "900"
    assert _attempt(client, "bob", PASSWORD).status_code == 303  # other accounts sign in as usual
    clock[0] += 600
    assert _attempt(client, "alice", PASSWORD).headers["retry-after"] == "300"
    clock[0] += 301
    assert _attempt(client, "alice", PASSWORD).status_code == 303


def test_one_address_spraying_many_names_is_locked_out(review):
    settings, _, _ = review
    clock = [1000.0]
    client = client_for(_fresh_app(settings, clock))
    for i in range(SIGN_IN_LIMITS["address"]):
        assert _attempt(client, f"guess{i}", PASSWORD).status_code == 401
    assert _attempt(client, "bob", PASSWORD).status_code == 429


def test_session_cookie_is_marked_secure_when_configured_for_https(review):
    settings, _, _ = review
    https = settings.model_copy(update={"review": settings.review.model_copy(update={"secure_cookie": True})})
    app = create_app(https)
    client = TestClient(app, base_url="https://127.0.0.1", follow_redirects=False)
    resp = _attempt(client, "alice", PASSWORD)
    assert resp.status_code == 303 and "; secure" in resp.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200  # and the browser (here: the client) sends it back over HTTPS


def test_sign_in_redirects_only_to_local_pages(review):
    _, _, app = review
    client = client_for(app)
    token = csrf_of(client.get("/login?next=//evil.example/").text)
    resp = client.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token,
                                       "next": "//evil.example/"})
    assert resp.headers["location"] == "/"
    assert client.get("/audit").status_code == 200


def test_pages_forbid_inline_script_and_framing(review):
    _, _, app = review
    resp = sign_in(app, "alice").get("/")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["cache-control"] == "no-store"


def test_second_annotator_is_not_silently_overwritten(review):
    settings, seeded, app = review
    item_id = seeded.clusters["c-offline"][0]
    alice, bob = sign_in(app, "alice"), sign_in(app, "bob")
    alice_page, bob_page = alice.get(f"/items/{item_id}").text, bob.get(f"/items/{item_id}").text
    assert bob.post(f"/items/{item_id}/decision", data={
        "action": "reject", "reason": "duplicate of a known issue", "scope": "item",
        "revision": REVISION.search(bob_page).group(1), "csrf_token": csrf_of(bob_page)}).status_code == 303

    late = alice.post(f"/items/{item_id}/decision", data={
        "action": "edit", "answer": "Yes, it works offline.", "scope": "item",
        "revision": REVISION.search(alice_page).group(1), "csrf_token": csrf_of(alice_page)})
    assert late.status_code == 409
    assert "Not saved: bob already marked this item" in late.text and "rejected" in late.text
    assert queue_row(settings, item_id)[:2] == ("rejected", "bob")

    # Seeing bob's decision, alice replaces it on purpose: the page she got carries the new revision.
    replaced = alice.post(f"/items/{item_id}/decision", data={
        "action": "edit", "answer": "Yes, it works offline.", "scope": "item",
        "revision": REVISION.search(late.text).group(1), "csrf_token": csrf_of(late.text)})
    assert replaced.status_code == 303
    status, reviewer, edited, _, revision = queue_row(settings, item_id)
    assert (status, reviewer, edited, revision) == ("edited", "alice", "Yes, it works offline.", 2)
    audit = alice.get("/audit/bob").text
    assert item_id in audit and "(since replaced)" in audit


def test_whole_cluster_decision_leaves_decided_items_alone(review):
    settings, seeded, app = review
    first, second, *rest = seeded.clusters["c-history"]
    alice, bob = sign_in(app, "alice"), sign_in(app, "bob")
    page = bob.get(f"/items/{second}").text
    bob.post(f"/items/{second}/decision", data={"action": "reject", "reason": "not a product question",
             "scope": "item", "revision": REVISION.search(page).group(1), "csrf_token": csrf_of(page)})
    page = alice.get(f"/items/{first}").text
    resp = alice.post(f"/items/{first}/decision", data={
        "action": "edit", "answer": "Open a note and choose History to see earlier versions.", "scope": "cluster",
        "revision": REVISION.search(page).group(1), "csrf_token": csrf_of(page)})
    assert resp.status_code == 303
    assert queue_row(settings, second)[:2] == ("rejected", "bob")
    for iid in (first, *rest):
        status, reviewer, edited, _, _ = queue_row(settings, iid)
        assert (status, reviewer) == ("edited", "alice")
        assert edited == "Open a note and choose History to see earlier versions."
    flash = alice.get(resp.headers["location"]).text
    assert f"Edited {1 + len(rest)} items in this cluster; 1 already decided" in flash
    with connect(settings) as con:
        logged = con.execute("SELECT count(*), count(*) FILTER (WHERE via_cluster) FROM review_decisions "
                             "WHERE reviewer = 'alice' AND cluster_id = 'c-history'").fetchone()
    assert logged == (1 + len(rest), len(rest))


@pytest.mark.parametrize(("data", "message"), [
    ({"action": "edit", "answer": "   "}, "The edited answer is empty"),
    ({"action": "reject", "reason": ""}, "A rejection needs a reason"),
    ({"action": "approve"}, "use one of accepted, edited, rejected"),
])
def test_incomplete_decisions_are_explained_not_stored(review, data, message):
    settings, seeded, app = review
    item_id = seeded.clusters["c-student"][0]
    alice = sign_in(app, "alice")
    page = alice.get(f"/items/{item_id}").text
    resp = alice.post(f"/items/{item_id}/decision", data={**data, "revision": REVISION.search(page).group(1),
                                                          "csrf_token": csrf_of(page)})
    assert resp.status_code == 422 and message in resp.text
    assert queue_row(settings, item_id)[0] == "new"


def test_annotator_gets_no_raw_text_but_the_lead_does_until_it_is_purged(review):
    settings, seeded, app = review
    alice, lena = sign_in(app, "alice"), sign_in(app, "lena")
    scrubbed = alice.get(f"/items/{PII_ID}")
    assert scrubbed.status_code == 200 and "How much does the Plus plan cost?" in scrubbed.text
    assert seeded.pii_email not in scrubbed.text and "415-555-0142" not in scrubbed.text
    assert "Show raw text" not in scrubbed.text
    refused = alice.get(f"/items/{PII_ID}?raw=1")
    assert refused.status_code == 403 and seeded.pii_email not in refused.text
    assert seeded.pii_email not in alice.get("/?status=all").text

    assert seeded.pii_email in lena.get(f"/items/{PII_ID}?raw=1").text
    with connect(settings) as con:
        con.execute("UPDATE interactions SET raw_purged_at = current_timestamp WHERE id = ?", [PII_ID])
    try:
        purged = lena.get(f"/items/{PII_ID}?raw=1")
        assert purged.status_code == 200 and seeded.pii_email not in purged.text
        assert "has been purged" in purged.text
    finally:
        with connect(settings) as con:
            con.execute("UPDATE interactions SET raw_purged_at = NULL WHERE id = ?", [PII_ID])


def test_scrubbed_rendering_is_stored_once_and_reused(review):
    settings, seeded, app = review
    alice = sign_in(app, "alice")
    alice.get(f"/items/{PII_ID}")
    with connect(settings) as con:
        con.execute("UPDATE review_scrubbed SET response = 'stored rendering' WHERE interaction_id = ?", [PII_ID])
    assert "stored rendering" in alice.get(f"/items/{PII_ID}").text  # read back, not scrubbed again
    with connect(settings) as con:
        con.execute("UPDATE review_queue SET suggested_answer = 'The Plus plan costs 9 dollars per month.' "
                    "WHERE interaction_id = ?", [PII_ID])
    changed = alice.get(f"/items/{PII_ID}").text
    assert "stored rendering" not in changed and "9 dollars" in changed  # its source changed: scrubbed again


def test_queue_filters_and_counts(review):
    _, seeded, app = review
    alice = sign_in(app, "alice")
    billing = alice.get("/?workload=billing&status=all").text
    assert PII_ID in billing and "planted-xss" not in billing
    regenerate = alice.get("/?signal=regenerate&status=all").text
    assert PII_ID not in regenerate
    none = alice.get("/?from=2030-01-01").text
    assert "Nothing matches" in none
    assert alice.get("/?from=yesterday").status_code == 400
    assert re.search(r"<strong>\d+ left to review</strong>", alice.get("/").text)


def test_cli_manages_accounts(tmp_path, monkeypatch):
    from flywheel.cli import app as cli

    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    added = runner.invoke(cli, ["review", "add-user", "carol", "--role", "lead"],
                          env={"FLYWHEEL_REVIEW_PASSWORD": "long enough secret"})
    assert added.exit_code == 0 and "added carol (lead)" in added.output
    prompted = runner.invoke(cli, ["review", "add-user", "dan"], input="another secret\nanother secret\n")
    assert prompted.exit_code == 0 and "added dan (annotator)" in prompted.output
    listed = runner.invoke(cli, ["review", "list-users"])
    assert "carol" in listed.output and "lead" in listed.output and "dan" in listed.output
    assert "secret" not in listed.output and "argon2" not in listed.output
    bad_role = runner.invoke(cli, ["review", "add-user", "eve", "--role", "admin", "--password", "long enough"])
    assert bad_role.exit_code == 2 and "use one of annotator, lead" in bad_role.output
    short = runner.invoke(cli, ["review", "add-user", "eve", "--password", "short"])
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    with connect(load_settings()) as con:
        hashes = con.execute("SELECT password_hash FROM review_users ORDER BY username").fetchall()
    assert all(h.startswith("$argon2id$") for (h,) in hashes)


def test_cli_refuses_a_public_address_with_the_demo_secret(tmp_path, monkeypatch):
    from flywheel.cli import app as cli

    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(cli, ["review", "--host", "0.0.0.0", "--port", "8011"])
    assert result.exit_code == 2 and "FLYWHEEL_REVIEW__SESSION_SECRET" in result.output


def test_cli_warns_when_a_public_address_would_carry_the_cookie_over_plain_http(tmp_path, monkeypatch):
    from flywheel.cli import app as cli
    from serving import http

    served = []
    monkeypatch.setattr(http, "run", lambda app, host, port: served.append((host, port)))  # do not block the test
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLYWHEEL_REVIEW__SESSION_SECRET", "a-long-random-secret-for-this-test-only")
    result = CliRunner().invoke(cli, ["review", "--host", "0.0.0.0", "--port", "8011"])
    assert result.exit_code == 0 and served == [("0.0.0.0", 8011)]
    assert "FLYWHEEL_REVIEW__SECURE_COOKIE=true" in result.output
    monkeypatch.setenv("FLYWHEEL_REVIEW__SECURE_COOKIE", "true")
    assert "SECURE_COOKIE" not in CliRunner().invoke(cli, ["review", "--host", "0.0.0.0"]).output


def test_accepting_without_a_suggestion_takes_the_model_answer(review):
    settings, seeded, app = review
    item_id = seeded.clusters["c-refund"][-1]
    alice = sign_in(app, "alice")
    assert "Accept the model's answer" in alice.get(f"/items/{item_id}").text
    assert decide(alice, item_id, action="accept").status_code == 303
    assert queue_row(settings, item_id)[:3] == ("accepted", "alice", None)


def test_an_item_refreshed_by_curation_must_be_looked_at_again(review):
    settings, seeded, app = review
    item_id = seeded.clusters["c-refund"][0]
    alice = sign_in(app, "alice")
    page = alice.get(f"/items/{item_id}").text
    with connect(settings) as con:  # what the miner does to a still-new item whose suggestion changed
        con.execute("UPDATE review_queue SET suggested_answer = 'Refunds within 30 days.', "
                    "revision = revision + 1 WHERE interaction_id = ?", [item_id])
    resp = alice.post(f"/items/{item_id}/decision", data={
        "action": "accept", "scope": "item", "revision": REVISION.search(page).group(1),
        "csrf_token": csrf_of(page)})
    assert resp.status_code == 409 and "this item changed after you opened it" in resp.text
    assert "Refunds within 30 days." in resp.text
    assert queue_row(settings, item_id)[0] == "new"


def test_the_next_curate_run_builds_examples_from_the_decisions(review):
    from curation.examples import build_examples
    from curation.mining import load_interactions
    from curation.review_queue import verdicts

    settings, seeded, app = review
    edited, rejected = seeded.clusters["c-support_hours"]
    accepted = seeded.clusters["c-two_factor"][0]
    alice = sign_in(app, "alice")
    new_answer = "Support answers every day from 8:00 to 20:00 CET."
    assert decide(alice, edited, action="edit", answer=new_answer).status_code == 303
    assert decide(alice, rejected, action="reject", reason="not about Lumen Notes").status_code == 303
    assert decide(alice, accepted, action="accept").status_code == 303
    with connect(settings) as con:
        interactions = [ix for ix in load_interactions(con) if ix.id in (edited, rejected, accepted)]
        raw_suggestion = con.execute("SELECT suggested_answer FROM review_queue WHERE interaction_id = ?",
                                     [accepted]).fetchone()[0]
        built = build_examples(interactions, verdicts(con), settings)
    targets = {ex["source_interactions"][0]: ex["messages"][-1]["content"]
               for ex in built.examples if ex["kind"] == "sft"}
    assert targets == {edited: new_answer, accepted: raw_suggestion}
    assert any(rejected == r["interaction_id"] and "not about Lumen Notes" in why for r, why in built.rejected)
