"""RegistryBrowser and TransitionRequests without a kernel: trait state after each action,
the browser's command, errors shown in the widget, static fallbacks — on a real local store,
and over HTTP to a real standalone server where two users see different buttons; then the
front ends in a real Chromium, each click served by the kernel-side widget."""

from __future__ import annotations

import json

import pytest

import labtrack
from labtrack.errors import LabtrackError
from labtrack.services.permissions import RegistrySettings
from labtrack.widgets import RegistryBrowser, TransitionRequests
from tests.widgets.http_server import labtrack_server

APPROVE = "APPROVE_TRANSITION_REQUEST"
REJECT = "REJECT_TRANSITION_REQUEST"
CANCEL = "CANCEL_TRANSITION_REQUEST"


def invoke(widget, action: str, **args) -> dict:
    """Send the browser's command message as the front end does (through the widget's comm
    handler) and return the answer the kernel sends back."""
    answers = []
    widget.send = lambda content, buffers=None: answers.append(content)
    widget._handle_msg({"content": {"data": {"method": "custom", "content": {
        "kind": "anywidget-command", "id": "req-1", "name": "_invoke",
        "msg": {"action": action, "args": args}}}}, "buffers": []})
    del widget.send
    [answer] = answers
    assert answer["kind"] == "anywidget-command-response" and answer["id"] == "req-1"
    return answer["response"]


def html_of(widget) -> str:
    data, _ = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    return data["text/html"]


@pytest.fixture
def registry(fluent_uri):
    """Two models on a local store: "demand" with versions 1 (Production), 2 (Staging) and 3
    (None), all from the run "train"; "churn" with one version."""
    client = labtrack.TrackingClient(fluent_uri)
    with labtrack.start_run(run_name="train") as run:
        labtrack.log_metric("loss", 0.1)
    run_id = run.info.run_id
    client.create_registered_model("demand", description="hourly demand")
    for _ in range(3):
        client.create_model_version("demand", f"{run.info.artifact_uri}/model", run_id)
    client.transition_model_version_stage("demand", 1, "Production")
    client.transition_model_version_stage("demand", 2, "Staging")
    client.create_registered_model("churn")
    client.create_model_version("churn", f"{run.info.artifact_uri}/model", run_id)
    return client


# -- RegistryBrowser ----------------------------------------------------------------------------


def test_the_browser_lists_models_with_latest_staging_and_production(registry):
    browser = RegistryBrowser()
    try:
        assert browser.error == ""
        rows = {m["name"]: m for m in browser.models}
        assert list(rows) == ["churn", "demand"]  # by name
        demand = rows["demand"]
        assert (demand["latest_version"], demand["staging"], demand["production"]) == (
            "3", "2", "1")
        assert rows["churn"]["staging"] == rows["churn"]["production"] == ""
        assert browser.selected == "" and browser.model == {} and browser.versions == []
    finally:
        browser.close()

    only = RegistryBrowser(registry, filter_string="name LIKE 'dem%'")
    try:
        assert [m["name"] for m in only.models] == ["demand"]
    finally:
        only.close()


def test_selecting_a_model_shows_its_versions_and_history_newest_first(registry):
    browser = RegistryBrowser(registry)
    try:
        browser.select_model("demand")
        assert browser.selected == "demand" and browser.model["description"] == "hourly demand"
        versions = browser.versions
        assert [v["version"] for v in versions] == ["3", "2", "1"]
        assert [v["current_stage"] for v in versions] == ["None", "Staging", "Production"]
        assert all(v["run_name"] == "train" and v["run_id"] for v in versions)
        assert all(v["creation_timestamp"] > 0 and v["user_id"] for v in versions)

        history = browser.activities
        times = [a["creation_timestamp"] for a in history]
        assert times == sorted(times, reverse=True)
        assert history[-1]["activity_type"] == "REGISTERED_MODEL_CREATED"
        moved = [a for a in history if a["activity_type"] == "APPLIED_TRANSITION"]
        assert [(a["version"], a["from_stage"], a["to_stage"]) for a in moved] == [
            ("2", "None", "Staging"), ("1", "None", "Production")]
        assert all(a["label"] and a["user_id"] for a in history)

        browser.select_model(None)
        assert (browser.selected, browser.model, browser.versions, browser.activities) == (
            "", {}, [], [])
    finally:
        browser.close()


def test_requesting_a_transition_and_commenting_refresh_every_table(registry):
    browser = RegistryBrowser(registry)
    try:
        browser.select_model("demand")
        request = browser.request_transition(3, "Production", "beats v1 by 4%")
        assert browser.error == "" and f"request {request.id}" in browser.message
        assert [m["pending"] for m in browser.models if m["name"] == "demand"] == [1]
        [version3] = [v for v in browser.versions if v["version"] == "3"]
        assert version3["pending"] == [{"id": request.id, "to_stage": "Production",
                                        "user_id": request.user_id}]
        [row] = browser.requests
        assert (row["id"], row["version"], row["from_stage"], row["to_stage"], row["comment"]) \
            == (request.id, "3", "None", "Production", "beats v1 by 4%")
        assert APPROVE in row["available_actions"]  # the local store's user manages it all
        latest = browser.activities[0]
        assert (latest["activity_type"], latest["version"], latest["to_stage"],
                latest["comment"]) == ("REQUESTED_TRANSITION", "3", "Production",
                                       "beats v1 by 4%")

        browser.comment(2, "validated on March data")
        assert browser.message == "Commented on version 2."
        latest = browser.activities[0]
        assert (latest["activity_type"], latest["version"], latest["comment"]) == (
            "NEW_COMMENT", "2", "validated on March data")
        assert [c.comment for c in registry.list_comments("demand", 2)] == [
            "validated on March data"]
    finally:
        browser.close()


def test_the_browser_acts_through_its_command(registry):
    browser = RegistryBrowser(registry)
    try:
        assert invoke(browser, "select_model", name="demand")["ok"]
        assert browser.selected == "demand"
        answer = invoke(browser, "request_transition", version="3", stage="Staging",
                        comment="")
        assert answer["ok"] and answer["message"] == browser.message != ""
        [request] = browser.requests
        answer = invoke(browser, "approve", request_id=request["id"], comment="ok",
                        archive_existing=True)
        assert answer["ok"], answer
        assert browser.requests == []
        stages = {v["version"]: v["current_stage"] for v in browser.versions}
        assert stages == {"3": "Staging", "2": "Archived", "1": "Production"}
        assert [m["staging"] for m in browser.models if m["name"] == "demand"] == ["3"]
        types = [a["activity_type"] for a in browser.activities[:2]]
        assert set(types) == {"APPROVED_REQUEST", "SYSTEM_TRANSITION"}

        answer = invoke(browser, "search", filter_string="name = 'churn'")
        assert answer["ok"] and [m["name"] for m in browser.models] == ["churn"]
        assert invoke(browser, "refresh")["ok"]
    finally:
        browser.close()


def test_errors_are_shown_in_the_browser_and_raised_to_code(registry):
    browser = RegistryBrowser(registry)
    try:
        with pytest.raises(LabtrackError):
            browser.request_transition(1, "Staging")  # nothing selected
        assert browser.error_code == "INVALID_PARAMETER_VALUE" and "Select" in browser.error

        browser.select_model("demand")
        assert browser.error == ""
        answer = invoke(browser, "request_transition", version="1", stage="Production",
                        comment="")
        assert not answer["ok"] and answer["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "already in Production" in browser.error == answer["error"]
        assert browser.versions  # the tables are still there

        answer = invoke(browser, "comment", version="2", text="   ")
        assert not answer["ok"] and "comment" in browser.error

        answer = invoke(browser, "request_transition", version="9", stage="Staging")
        assert answer["error_code"] == "RESOURCE_DOES_NOT_EXIST"

        answer = invoke(browser, "select_model", name="no-such-model")
        assert answer["error_code"] == "RESOURCE_DOES_NOT_EXIST" and "no-such-model" in \
            browser.error
        assert browser.selected == "demand" and browser.versions  # the selection stays

        answer = invoke(browser, "delete_registered_model", name="demand")  # not an action
        assert not answer["ok"] and "Unknown widget action" in browser.error
        answer = invoke(browser, "comment", versoin="2", text="typo")  # a bad call
        assert not answer["ok"] and browser.error_code == "INTERNAL_ERROR"

        answer = invoke(browser, "search", filter_string="name ~ 'x'")
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE" and browser.models == []
        assert browser.versions  # a bad filter leaves the selected model alone

        assert invoke(browser, "search", filter_string="")["ok"]
        assert browser.error == browser.error_code == "" and len(browser.models) == 2
    finally:
        browser.close()


def test_the_browser_fallback_has_its_tables(registry):
    browser = RegistryBrowser(registry)
    try:
        browser.select_model("demand")
        browser.comment(3, "<b>not bold</b>")
        page = html_of(browser)
        assert "labtrack registered models" in page and "<th>Latest Version</th>" in page
        assert "demand: versions" in page and "<td>train</td>" in page
        assert "demand: history (newest first)" in page and "commented" in page
        assert "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not" not in page
        with pytest.raises(LabtrackError):
            browser.select_model("missing")
        assert "labtrack-static-error" in html_of(browser)
    finally:
        browser.close()


# -- TransitionRequests -------------------------------------------------------------------------


def test_approving_with_archive_moves_the_version_and_empties_the_table(registry):
    request = registry.request_transition("demand", 2, "Production", "promote")
    registry.request_transition("churn", 1, "Staging")
    widget = TransitionRequests(registry, name="demand")
    try:
        assert widget.name == "demand" and widget.error == ""
        [row] = widget.requests
        assert (row["model_name"], row["version"], row["from_stage"], row["to_stage"],
                row["comment"]) == ("demand", "2", "Staging", "Production", "promote")
        assert set(row["available_actions"]) == {APPROVE, REJECT, CANCEL}

        activity = widget.approve(request.id, "ship it", archive_existing=True)
        assert activity.comment == "ship it"
        assert widget.requests == [] and widget.error == ""
        assert "now in Production" in widget.message
        assert str(registry.get_model_version("demand", 2).current_stage) == "Production"
        assert str(registry.get_model_version("demand", 1).current_stage) == "Archived"
    finally:
        widget.close()

    everything = TransitionRequests(registry)
    try:
        assert [r["model_name"] for r in everything.requests] == ["churn"]
    finally:
        everything.close()


def test_rejecting_keeps_the_stage_and_records_the_comment(registry):
    request = registry.request_transition("demand", 3, "Staging")
    widget = TransitionRequests(registry)
    try:
        answer = invoke(widget, "reject", request_id=request.id, comment="needs more data")
        assert answer["ok"] and widget.requests == []
        assert "Rejected" in widget.message
        assert str(registry.get_model_version("demand", 3).current_stage) == "None"
        latest = registry.get_activities("demand", 3)[0]
        assert (str(latest.activity_type), latest.comment) == ("REJECTED_REQUEST",
                                                               "needs more data")
    finally:
        widget.close()


def test_a_request_someone_else_closed_first_is_a_conflict_and_leaves_the_table(registry):
    request = registry.request_transition("demand", 3, "Staging")
    first, second = TransitionRequests(registry), TransitionRequests(registry)
    try:
        assert [r["id"] for r in second.requests] == [request.id]
        first.approve(request.id)
        answer = invoke(second, "approve", request_id=request.id, comment="",
                        archive_existing=False)
        assert not answer["ok"] and answer["error_code"] == "RESOURCE_CONFLICT"
        assert "no longer open" in second.error and second.error_code == "RESOURCE_CONFLICT"
        assert second.requests == []  # the table shows what the registry now holds
        with pytest.raises(LabtrackError) as error:
            second.reject(request.id)
        assert error.value.error_code == "RESOURCE_CONFLICT"
        with pytest.raises(LabtrackError) as error:
            second.approve("999999")
        assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert "999999" in second.error
    finally:
        first.close()
        second.close()


def test_the_requests_fallback_lists_the_open_requests(registry):
    registry.request_transition("demand", 3, "Production", "weekly refresh")
    widget = TransitionRequests(registry)
    try:
        page = html_of(widget)
        assert "labtrack open transition requests" in page
        assert "<th>Requested by</th>" in page and "<td>weekly refresh</td>" in page
        assert "<td>demand</td><td>3</td><td>None</td><td>Production</td>" in page
    finally:
        widget.close()
    missing = TransitionRequests(registry, name="missing")
    try:
        assert missing.error_code == "RESOURCE_DOES_NOT_EXIST" and missing.requests == []
        assert "labtrack-static-error" in html_of(missing)
    finally:
        missing.close()


# -- two users over HTTP ------------------------------------------------------------------------


@pytest.fixture
def team_server(tmp_path):
    """``labtrack server``'s application on a loopback port, served from a thread: ann and
    bob each have a token; Production requests need an approver other than the requester."""
    with labtrack_server(tmp_path / "team", {"tok-a": "ann", "tok-b": "bob"},
                         RegistrySettings()) as url:
        yield url


@pytest.fixture
def team(team_server, monkeypatch):
    """ann and bob, each with her own ``TrackingClient`` over HTTP; bob created "churn" and
    lets ann edit it; ann registered version 1 from her run "xgb"."""
    # A client takes its token from LABTRACK_TRACKING_TOKEN when it is made.
    url = team_server
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", "tok-a")
    ann = labtrack.TrackingClient(url)
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", "tok-b")
    bob = labtrack.TrackingClient(url)

    assert bob.create_registered_model("churn").user_id == "bob"  # bob manages it
    bob.set_permissions("churn", {"ann": "CAN_EDIT"})
    experiment_id = ann.create_experiment("churn-training")
    run = ann.create_run(experiment_id, run_name="xgb")
    version = ann.create_model_version("churn", f"runs:/{run.info.run_id}/model",
                                       run.info.run_id)
    assert version.user_id == "ann"
    return ann, bob, version


def test_each_user_sees_only_the_buttons_they_may_press(team):
    ann, bob, version = team
    browser = RegistryBrowser(ann)
    ann_requests = TransitionRequests(ann, name="churn")
    bob_requests = TransitionRequests(bob)
    try:
        browser.select_model("churn")
        [row] = browser.versions
        assert (row["user_id"], row["run_name"]) == ("ann", "xgb")
        request = browser.request_transition(version.version, "Production", "AUC 0.91")
        assert request.user_id == "ann" and browser.error == ""

        for widget in (ann_requests, bob_requests):
            widget.refresh()
            assert [r["id"] for r in widget.requests] == [request.id]
        # ann may only withdraw her own request; bob may decide but not withdraw it.
        assert ann_requests.requests[0]["available_actions"] == [CANCEL]
        assert bob_requests.requests[0]["available_actions"] == [APPROVE, REJECT]
        assert browser.requests[0]["available_actions"] == [CANCEL]

        answer = invoke(ann_requests, "approve", request_id=request.id, comment="",
                        archive_existing=False)
        assert not answer["ok"] and ann_requests.error_code == "PERMISSION_DENIED"
        assert "ann" in ann_requests.error
        assert [r["id"] for r in ann_requests.requests] == [request.id]  # still open

        answer = invoke(bob_requests, "approve", request_id=request.id,
                        comment="approved for Monday", archive_existing=True)
        assert answer["ok"], answer
        assert bob_requests.requests == [] and bob_requests.error == ""

        browser.refresh()
        assert browser.requests == [] and browser.versions[0]["current_stage"] == "Production"
        assert [m["production"] for m in browser.models] == [version.version]
        latest = browser.activities[0]
        assert (latest["activity_type"], latest["user_id"], latest["from_stage"],
                latest["to_stage"], latest["comment"]) == (
            "APPROVED_REQUEST", "bob", "None", "Production", "approved for Monday")
        ann_requests.refresh()
        assert ann_requests.requests == [] and ann_requests.error == ""
    finally:
        for widget in (browser, ann_requests, bob_requests):
            widget.close()


# -- the front ends in a real Chromium ----------------------------------------------------------
#
# The widget's built module renders in headless Chromium (tests/widgets/browser.py's page and
# stand-in model); what it sends through ``experimental.invoke`` is handed to the real
# kernel-side widget here, whose new state and answer go back to the page — the round trip
# the comm makes in Jupyter.

MOUNT = """async ([module, state]) => {
  window.invocations = [];
  const experimental = { invoke: (name, msg) => new Promise((resolve, reject) =>
    window.invocations.push({ name, msg, resolve, reject })) };
  const { default: widget } = await import(module);
  window.model = new Model(state);
  window.cleanup = widget.render({ model: window.model, el: document.getElementById("host"),
                                   experimental });
}"""

ANSWER = """([state, answer]) => {
  const call = window.invocations.shift();
  for (const [key, value] of Object.entries(state)) {
    if (JSON.stringify(window.model.get(key)) !== JSON.stringify(value)) {
      window.model.set(key, value);
    }
  }
  call.resolve([answer, []]);
}"""


def synced_state(widget) -> dict:
    return json.loads(json.dumps({k: v for k, v in widget.get_state().items()
                                  if not k.startswith("_")}))


def mount_widget(page, widget, module: str) -> None:
    page.evaluate(MOUNT, [f"/static/{module}.js", synced_state(widget)])


def serve_invocation(page, widget) -> dict:
    """Wait for the front end's command, run it in the kernel-side widget, send back the new
    state and the answer; returns what the front end asked for."""
    page.wait_for_function("window.invocations.length > 0", timeout=30_000)
    call = page.evaluate("({name: window.invocations[0].name, msg: window.invocations[0].msg})")
    assert call["name"] == "_invoke"
    answer = invoke(widget, call["msg"]["action"], **call["msg"]["args"])
    page.evaluate(ANSWER, [synced_state(widget), answer])
    return call["msg"]


@pytest.fixture(scope="module")
def chromium():
    from tests.widgets.browser import browser_page

    with browser_page() as page:
        yield page


@pytest.fixture
def page(chromium):
    from tests.widgets.browser import errors

    chromium.reload()
    yield chromium
    assert errors(chromium) == []


@pytest.mark.slow
def test_the_browser_front_end_selects_requests_comments_and_approves(page, registry):
    browser = RegistryBrowser(registry)
    try:
        mount_widget(page, browser, "registry_browser")
        models = page.locator(".labtrack-models-table tbody tr")
        assert models.count() == 2
        demand = page.locator(".labtrack-models-table tr[data-name='demand']")
        assert demand.locator(".labtrack-stage[data-stage='Production']").inner_text() == \
            "Version 1"
        assert demand.locator(".labtrack-stage[data-stage='Staging']").inner_text() == \
            "Version 2"

        demand.click()
        assert serve_invocation(page, browser) == {"action": "select_model",
                                                   "args": {"name": "demand"}}
        versions = page.locator(".labtrack-versions-table tbody tr[data-version]")
        versions.first.wait_for()
        assert versions.count() == 3
        assert "labtrack-selected" in demand.get_attribute("class")
        stages = page.locator(".labtrack-versions-table .labtrack-stage")
        assert stages.all_inner_texts() == ["None", "Staging", "Production"]
        assert "train" in versions.first.inner_text()
        events = page.locator(".labtrack-timeline .labtrack-event")
        assert events.count() == len(browser.activities)
        assert events.last.get_attribute("data-type") == "REGISTERED_MODEL_CREATED"

        # Request a transition from the version's inline form.
        version3 = page.locator(".labtrack-versions-table tr[data-version='3']")
        version3.locator("button", has_text="Request transition").click()
        form = page.locator(".labtrack-inline-form")
        assert form.locator("option").all_inner_texts() == ["Staging", "Production",
                                                            "Archived"]
        form.locator("select").select_option("Production")
        form.locator("textarea").fill("beats v1 by 4%")
        form.locator("button[type=submit]").click()
        assert page.locator(".labtrack-notice").inner_text() == "Working…"
        assert serve_invocation(page, browser) == {"action": "request_transition", "args": {
            "version": "3", "stage": "Production", "comment": "beats v1 by 4%"}}
        page.wait_for_selector(".labtrack-message:has-text('Requested a move')")
        assert form.count() == 0  # closed once the kernel said yes
        assert "Production" in version3.locator("td").nth(5).inner_text()
        assert events.first.get_attribute("data-type") == "REQUESTED_TRANSITION"
        assert "beats v1 by 4%" in events.first.inner_text()

        # A comment the kernel refuses: the error shows, the form stays for a second try.
        version3.locator("button", has_text="Comment").click()
        form.locator("button[type=submit]").click()
        assert serve_invocation(page, browser)["action"] == "comment"
        error = page.locator(".labtrack-error")
        error.wait_for()
        assert "INVALID PARAMETER VALUE" in error.inner_text()
        form.locator("textarea").fill("validated on March data")
        form.locator("button[type=submit]").click()
        assert serve_invocation(page, browser)["args"]["text"] == "validated on March data"
        page.wait_for_selector(".labtrack-message:has-text('Commented on version 3')")
        assert error.count() == 0 and form.count() == 0
        assert events.first.get_attribute("data-type") == "NEW_COMMENT"

        # Approve it from the open-requests table, archiving the current Production version.
        row = page.locator(".labtrack-requests tr[data-request-id]")
        assert row.count() == 1
        row.locator("input[type=text]").fill("ship it")
        row.locator("label", has_text="Archive current Production versions").locator(
            "input").check()
        row.locator("button", has_text="Approve").click()
        asked = serve_invocation(page, browser)
        assert asked["action"] == "approve" and asked["args"]["comment"] == "ship it"
        assert asked["args"]["archive_existing"] is True
        page.wait_for_selector(".labtrack-message:has-text('Approved')")
        assert row.count() == 0
        assert stages.all_inner_texts() == ["Production", "Staging", "Archived"]
        assert demand.locator(".labtrack-stage[data-stage='Production']").inner_text() == \
            "Version 3"

        # The history of one version only.
        page.locator(".labtrack-history select").select_option("1")
        assert {e.get_attribute("data-type") for e in events.all()} == {
            "MODEL_VERSION_CREATED", "APPLIED_TRANSITION", "SYSTEM_TRANSITION"}
    finally:
        browser.close()


@pytest.mark.slow
def test_the_requests_front_end_shows_each_user_only_her_buttons(page, team):
    ann, bob, version = team
    request = ann.request_transition("churn", version.version, "Production", "AUC 0.91")
    mine, theirs = TransitionRequests(ann), TransitionRequests(bob)
    try:
        mount_widget(page, mine, "transition_requests")
        row = page.locator("tr[data-request-id]")
        assert row.get_attribute("data-request-id") == request.id
        assert row.locator("button").all_inner_texts() == ["Cancel request"]
        assert row.locator("input[type=checkbox]").count() == 0

        page.reload()
        mount_widget(page, theirs, "transition_requests")
        assert row.locator("button").all_inner_texts() == ["Approve", "Reject"]
        assert row.locator("label").inner_text().strip() == \
            "Archive current Production versions"
        assert "churn" in row.inner_text() and "AUC 0.91" in row.inner_text()
        row.locator("input[type=text]").fill("for Monday")
        row.locator("button", has_text="Reject").click()
        assert serve_invocation(page, theirs) == {"action": "reject", "args": {
            "request_id": request.id, "comment": "for Monday"}}
        page.wait_for_selector(".labtrack-message:has-text('Rejected')")
        assert row.count() == 0
        assert "No open requests." in page.locator(".labtrack-requests").inner_text()
        assert page.locator(".labtrack-meta").inner_text() == "0 open"
    finally:
        mine.close()
        theirs.close()


@pytest.mark.slow
def test_a_kernel_that_does_not_answer_is_reported_in_the_widget(page, registry):
    widget = TransitionRequests(registry)
    try:
        mount_widget(page, widget, "transition_requests")
        page.locator(".labtrack-button", has_text="Refresh").click()
        page.wait_for_function("window.invocations.length > 0")
        page.evaluate("window.invocations.shift().reject(new Error('comm closed'))")
        error = page.locator(".labtrack-error")
        error.wait_for()
        assert "The kernel did not answer" in error.inner_text()
        assert "comm closed" in error.inner_text()
    finally:
        widget.close()
