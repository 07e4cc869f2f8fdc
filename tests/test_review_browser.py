"""The review page in a real browser: Debian's chromium (via Playwright) against a real uvicorn server
and a real warehouse file. Saves screenshots of the queue and of an item to tests/artifacts/.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from net import free_port
from review_support import PASSWORD, PII_ID, XSS_ID, add_accounts, seed_review_queue, shared_scrubber

from flywheel.settings import load_settings
from flywheel.warehouse import connect
from serving.review.app import create_app

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple]:
    """A seeded warehouse and the review app served by uvicorn on a free loopback port."""
    settings = load_settings(home=tmp_path_factory.mktemp("review-browser") / "home")
    seeded = seed_review_queue(settings)
    add_accounts(settings)
    app = create_app(settings)
    app.state.scrubber = shared_scrubber()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "review server did not start"
        time.sleep(0.05)
    yield settings, seeded, f"http://127.0.0.1:{uv.config.port}"
    uv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def signed_in_page(browser, base_url: str, username: str):
    """A fresh browser context signed in by keyboard alone (type, Tab, type, Enter)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(base_url + "/")
    assert "/login" in page.url  # the queue sends an anonymous visitor to sign in
    # Playwright's own focus check: a wait_for_function string is eval'd in the page, which the page's CSP
    # (script-src 'self') refuses whenever the first check does not already pass.
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(username)  # the user name field has focus on load
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base_url + "/")
    return page


def queue_rows(settings, cluster: str) -> dict[str, tuple]:
    with connect(settings) as con:
        rows = con.execute("SELECT interaction_id, status, reviewer, edited_answer, reason, decided_at "
                           "FROM review_queue WHERE cluster_id = ?", [cluster]).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_annotator_reviews_a_cluster_with_the_keyboard(server, browser, artifacts_dir):
    settings, seeded, base = server
    page = signed_in_page(browser, base, "alice")
    assert page.get_by_text("left to review").is_visible()
    page.screenshot(path=str(artifacts_dir / "review-queue.png"), full_page=False)

    first, second, third, fourth, *_ = seeded.clusters["c-import"]
    page.goto(f"{base}/?cluster=c-import")
    page.keyboard.press("j")  # focus the first item of the cluster
    assert page.evaluate("document.activeElement.getAttribute('href')").endswith(f"/items/{first}?cluster=c-import")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/items/{first}?cluster=c-import")
    page.screenshot(path=str(artifacts_dir / "review-item.png"), full_page=False)

    page.keyboard.press("a")  # accept the suggestion; the next item opens
    page.wait_for_url(f"**/items/{second}?cluster=c-import")
    assert page.get_by_role("status").inner_text().startswith("Accepted 1 item")

    page.keyboard.press("e")  # into the answer box, prefilled with the suggestion
    assert page.evaluate("document.activeElement.id") == "answer"
    suggestion = page.input_value("#answer")
    assert suggestion.startswith("Yes, use File")
    page.keyboard.type(" Pick the folder to import from.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/items/{third}?cluster=c-import")

    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.type("user asked about a different app")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/items/{fourth}?cluster=c-import")

    with page.expect_navigation():
        page.keyboard.press("s")  # skip: nothing stored, on to the next one
    assert f"/items/{fourth}" not in page.url
    page.keyboard.press("k")  # and back
    page.wait_for_url(f"**/items/{fourth}?cluster=c-import")

    rows = queue_rows(settings, "c-import")
    assert rows[first][:2] == ("accepted", "alice")
    assert rows[second][:3] == ("edited", "alice", suggestion + " Pick the folder to import from.")
    assert rows[third][:2] == ("rejected", "alice") and rows[third][3] == "user asked about a different app"
    assert rows[fourth][0] == "new" and rows[fourth][4] is None
    assert all(rows[i][4] is not None for i in (first, second, third))

    page.goto(f"{base}/audit/alice")
    assert page.locator("tbody tr").count() == 3


def test_accept_a_whole_cluster_in_one_key(server, browser):
    settings, seeded, base = server
    page = signed_in_page(browser, base, "bob")
    members = seeded.clusters["c-free_limit"]
    page.goto(f"{base}/items/{members[0]}")
    with page.expect_navigation():
        page.keyboard.press("Shift+A")
    assert "1 already decided (or without a suggestion) left as they were" in page.get_by_role("status").inner_text()
    rows = queue_rows(settings, "c-free_limit")
    with_suggestion = [i for i in members if i != members[-1]]  # the last one has only a thumbs-down
    assert all(rows[i][:2] == ("accepted", "bob") for i in with_suggestion)
    assert rows[members[-1]][0] == "new"


def test_html_in_a_conversation_is_shown_as_text_and_never_runs(server, browser):
    _, _, base = server
    page = signed_in_page(browser, base, "alice")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for url in (f"{base}/items/{XSS_ID}", f"{base}/?cluster=c-export"):
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None
        assert page.title() != "pwned"
        assert page.locator('img[src="x"]').count() == 0 and page.locator("main b").count() == 0
        assert page.locator("script").count() == 1  # only the page's own review.js
        assert "<script>window.__pwned = 1;" in page.locator("main").inner_text()
    assert dialogs == []


def test_annotator_sees_only_scrubbed_text_and_the_lead_can_open_the_raw(server, browser):
    _, seeded, base = server
    alice = signed_in_page(browser, base, "alice")
    alice.goto(f"{base}/items/{PII_ID}")
    text = alice.locator("body").inner_text()
    assert "How much does the Plus plan cost?" in text
    assert seeded.pii_email not in text and "415-555-0142" not in text
    assert alice.get_by_role("link", name="Show raw text").count() == 0
    response = alice.goto(f"{base}/items/{PII_ID}?raw=1")
    assert response.status == 403 and seeded.pii_email not in alice.content()

    lena = signed_in_page(browser, base, "lena")
    lena.goto(f"{base}/items/{PII_ID}")
    assert seeded.pii_email not in lena.content()  # scrubbed by default for the lead too
    lena.get_by_role("link", name="Show raw text (lead only)").click()
    lena.wait_for_url(f"**/items/{PII_ID}?raw=1")
    assert seeded.pii_email in lena.locator("main").inner_text()


def test_a_second_annotator_sees_the_first_decision(server, browser):
    settings, seeded, base = server
    item = seeded.clusters["c-team_seats"][0]
    alice, bob = signed_in_page(browser, base, "alice"), signed_in_page(browser, base, "bob")
    alice.goto(f"{base}/items/{item}")
    bob.goto(f"{base}/items/{item}")
    bob.keyboard.press("a")
    bob.wait_for_url("**/items/*")
    alice.keyboard.press("r")
    alice.keyboard.type("looks like spam")
    with alice.expect_navigation():
        alice.keyboard.press("Enter")
    assert "Not saved: bob already marked this item" in alice.get_by_role("alert").inner_text()
    assert queue_rows(settings, "c-team_seats")[item][:2] == ("accepted", "bob")
