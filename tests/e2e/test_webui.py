"""The web UI in a real browser: Debian's chromium driven by Playwright, against a real
cluster (`orbiter master` with Satellite scraping every second, two `orbiter agent`
processes, a task started by `orbiter execute` that keeps running).

Every page is opened and checked for what an operator would look for; a drain is done
from an agent's page and read back from the JSON API; a line appended to a running
task's stdout appears in the page's live tail; a PromQL graph is drawn. Waiting is
Playwright's auto-waiting `expect` with a deadline, never a sleep. The overview's
screenshot is taken on every run (into the test's temp dir); with
ORBITER_UPDATE_SCREENSHOT=1 it replaces docs/ui-overview.png, which the README shows,
so an ordinary run leaves the checkout as it was.

Playwright's own browser download is never used: `/usr/bin/chromium` (Debian's package,
scripts/install-deps.sh). Without it the tests fail in CI (CI=true) and are skipped,
saying why, on a developer's machine.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import needs
import pytest
from hatools import HaCluster
from satellite_helpers import (
    FAULT,
    WARN,
    Agent,
    Master,
    ProcessGroup,
    call,
    free_port,
    poll_until,
    start_agents,
    start_master,
    write_config,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 20_000
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "ui-overview.png"
ORBITER = [sys.executable, "-m", "orbiter.cli"]
TOKEN = "web-ui-test-operator-token"


def _browser_missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the web UI tests need playwright (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"the web UI tests need {CHROMIUM} (Debian package chromium)"
    return ""


MISSING = _browser_missing()
pytestmark = [pytest.mark.slow, needs.skip_outside_ci(MISSING)]

if not MISSING:
    from playwright.sync_api import Browser, Page, expect, sync_playwright


class Cluster:
    def __init__(self, master: Master, agents: list[Agent], task: dict[str, Any]) -> None:
        self.master = master
        self.agents = agents
        self.task = task

    def agent_of_task(self) -> Agent:
        return next(a for a in self.agents if a.agent_id == self.task["agent_id"])

    def idle_agent(self) -> Agent:
        return next(a for a in self.agents if a.agent_id != self.task["agent_id"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    needs.check(MISSING)
    procs = ProcessGroup()
    base = tmp_path_factory.mktemp("webui")
    try:
        config = write_config(base / "config", base / "fleet-marker")
        master = start_master(procs, base, config)
        agents = start_agents(master, procs, base, config, 2)
        execute = procs.start(
            [*ORBITER, "execute", "--master", master.address, "--name", "tail",
             "--command", "echo started; exec sleep 600"],
            base / "execute.log",
        )  # fmt: skip

        def running() -> Any:
            tasks = master.get("/api/v1/tasks?state=TASK_RUNNING")["tasks"]
            return next((t for t in tasks if t["id"] == "tail-0"), None)

        task = poll_until(running, 30, "the tail task to run")
        yield Cluster(master, agents, task)
        # First, while its agent is there to kill the task: `orbiter execute` then ends.
        execute.send_signal(signal.SIGTERM)
        execute.wait(15)
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def browser(cluster: Cluster) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, cluster: Cluster) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.set_default_timeout(WAIT_MS)
    yield p
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def open_page(page: Page, cluster: Cluster, route: str) -> None:
    page.goto(f"{cluster.master.url}/#{route}")


def test_the_overview_shows_the_cluster_and_is_saved_for_the_readme(
    page: Page, cluster: Cluster, tmp_path: Path
) -> None:
    open_page(page, cluster, "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    master_card = page.get_by_role("region", name="Leading master")
    expect(master_card).to_contain_text(cluster.master.address)
    agents = page.get_by_role("region", name="Agents", exact=True)
    expect(agents.get_by_role("link", name="2 active")).to_be_visible()
    expect(
        page.get_by_role("region", name="Tasks").get_by_role("link", name="1 TASK_RUNNING")
    ).to_be_visible()
    expect(page.get_by_role("region", name="Resources")).to_contain_text("cpus")
    expect(page.get_by_role("region", name="Satellite's safety budget")).to_contain_text(
        re.compile(r"\d+ of 1 agent Satellite may take out is used")
    )
    expect(page.get_by_role("region", name="Firing alerts")).to_be_visible()
    expect(page.locator("#live")).to_contain_text("live")
    shot = SCREENSHOT if os.environ.get("ORBITER_UPDATE_SCREENSHOT") else tmp_path / "ui.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a page was drawn, not an empty frame


def test_the_pages_are_reachable_by_keyboard_and_fit_a_narrow_screen(
    page: Page, cluster: Cluster
) -> None:
    open_page(page, cluster, "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    agents = page.get_by_role("navigation").get_by_role("link", name="Agents")
    for _ in range(4):  # the brand, Overview, Agents
        page.keyboard.press("Tab")
        if agents.evaluate("a => a === document.activeElement"):
            break
    expect(agents).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    expect(agents).to_have_attribute("aria-current", "page")
    # Back to pages seen before: their documents now come from the ETag cache (304).
    page.get_by_role("navigation").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("region", name="Leading master")).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="Rules").click()
    page.get_by_role("navigation").get_by_role("link", name="Overview").click()
    page.get_by_role("navigation").get_by_role("link", name="Rules").click()
    expect(page.locator("main tbody tr").filter(has_text="CheckCritical")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 800})
    for route in ("/", "/agents", "/tasks", "/query?expr=up"):
        open_page(page, cluster, route)
        expect(page.locator("main h1")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{route} is {width}px wide on a 390px screen"


def test_the_agents_list_filters_by_state_and_search(page: Page, cluster: Cluster) -> None:
    open_page(page, cluster, "/agents")
    rows = page.locator("main tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("State").select_option("drained")
    expect(page.get_by_text("No agent matches.")).to_be_visible()
    page.get_by_label("State").select_option("")
    page.get_by_label("Search").fill(cluster.agents[0].agent_id)
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name=cluster.agents[0].agent_id).click()
    expect(page.get_by_role("heading", name=f"Agent {cluster.agents[0].agent_id}")).to_be_visible()


def test_an_operator_drains_an_agent_from_its_page_and_the_api_shows_it(
    page: Page, cluster: Cluster
) -> None:
    agent = cluster.idle_agent()
    open_page(page, cluster, f"/agents/{agent.agent_id}")
    expect(page.get_by_role("region", name="Agent", exact=True)).to_contain_text("active")
    expect(page.get_by_role("region", name="Checks")).to_contain_text("fault")
    expect(page.get_by_role("region", name="Host metrics")).to_contain_text("memory_total_bytes")
    page.get_by_role("button", name="Drain").click()  # no reason yet: refused in the page
    expect(page.get_by_role("alert")).to_contain_text("Give a reason")
    page.get_by_label("Reason").fill("kernel upgrade from the UI")
    page.get_by_label("Drain grace (s)").fill("5")
    page.get_by_role("button", name="Drain").click()
    page.get_by_role("button", name=f"Yes, drain {agent.agent_id}").click()
    expect(page.get_by_role("status").filter(has_text="Done")).to_contain_text(
        re.compile(rf"{agent.agent_id} is now (draining|drained)")
    )
    m = cluster.master.agent(agent.agent_id)["maintenance"]
    assert m["mode"] in ("draining", "drained")
    assert (m["by"], m["reason"]) == ("operator", "kernel upgrade from the UI")
    history = page.get_by_role("region", name="Maintenance history")
    expect(history).to_contain_text("kernel upgrade from the UI")

    page.get_by_label("Reason").fill("done")
    page.get_by_role("button", name="Reactivate").click()
    page.get_by_role("button", name=f"Yes, reactivate {agent.agent_id}").click()
    expect(page.get_by_role("status").filter(has_text="Done")).to_contain_text("is now active")
    assert cluster.master.agent(agent.agent_id)["maintenance"]["mode"] == "active"


def test_frameworks_and_tasks_lists_filter_by_state_and_search(
    page: Page, cluster: Cluster
) -> None:
    open_page(page, cluster, "/frameworks")
    row = page.locator("main tbody tr").filter(has_text="tail")
    expect(row).to_contain_text("connected")
    row.get_by_role("link").first.click()  # the framework's tasks
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    expect(page.locator("main tbody tr").filter(has_text="tail-0")).to_have_count(1)
    page.get_by_label("State").select_option("TASK_FINISHED")
    expect(page.get_by_text("No task matches.")).to_be_visible()
    page.get_by_label("State").select_option("TASK_RUNNING")
    page.get_by_label("Search").fill("tail")
    page.get_by_role("link", name="tail-0").click()
    expect(page.get_by_role("heading", name="Task tail-0")).to_be_visible()


def test_the_task_page_shows_its_history_and_follows_stdout_live(
    page: Page, cluster: Cluster
) -> None:
    task = cluster.task
    open_page(page, cluster, f"/tasks/tail-0?framework_id={task['framework_id']}")
    history = page.get_by_role("region", name="State history")
    expect(history).to_contain_text("RUNNING")
    sandbox = page.get_by_role("region", name="Sandbox")
    expect(sandbox.get_by_role("button", name="stderr")).to_be_visible()
    viewer = page.locator("#file-view")
    expect(viewer).to_contain_text("started")
    stdout = (
        cluster.agent_of_task().work_dir / "sandboxes" / task["framework_id"] / "tail-0" / "stdout"
    )
    with stdout.open("a") as f:  # what the task writes next
        f.write("a line written while the page is open\n")
    expect(viewer).to_contain_text("a line written while the page is open")
    sandbox.get_by_role("button", name="stderr").click()
    expect(page.locator("#file-name")).to_have_text("stderr")


def test_alerts_show_firing_and_silenced_and_silences_are_added_and_expired(
    page: Page, cluster: Cluster
) -> None:
    agent = cluster.idle_agent()
    agent.mark(WARN)  # the `fault` check warns: CheckWarning fires (no action)
    try:
        open_page(page, cluster, "/alerts")
        row = page.locator("main tbody tr").filter(has_text="CheckWarning")
        expect(row).to_contain_text("firing")
        expect(row).to_contain_text(f'agent="{agent.agent_id}"')
        expect(row).to_contain_text("check fault on")  # the summary annotation
        row.get_by_role("link", name="Silence…").click()
        expect(page.get_by_label("Matchers")).to_have_value(re.compile('alertname="CheckWarning"'))
        page.get_by_label("Created by").fill("webui-test")
        page.get_by_label("Comment").fill("known: testing the UI")
        page.get_by_role("button", name="Add silence").click()
        expect(page.get_by_role("status").filter(has_text="added")).to_be_visible()
        silenced = page.locator("main tbody tr").filter(has_text="known: testing the UI")
        expect(silenced).to_contain_text("active")
        (silence,) = [s for s in call("GET", f"{cluster.master.url}/api/v2/silences")
                      if s["comment"] == "known: testing the UI"]  # fmt: skip
        open_page(page, cluster, "/alerts?state=silenced")
        expect(page.locator("main tbody tr").filter(has_text="CheckWarning")).to_contain_text(
            "silenced"
        )
        open_page(page, cluster, "/silences")
        page.get_by_role("button", name=f"Expire silence {silence['id']}").click()
        expect(page.get_by_role("status").filter(has_text="expired")).to_be_visible()
        state = call("GET", f"{cluster.master.url}/api/v2/silence/{silence['id']}")["status"]
        assert state["state"] == "expired"
    finally:
        agent.unmark(WARN)


def test_rules_targets_and_decisions_pages(page: Page, cluster: Cluster) -> None:
    open_page(page, cluster, "/rules")
    rule = page.locator("main tbody tr").filter(has_text="CheckCritical")
    expect(rule).to_contain_text("alerting")
    expect(rule).to_contain_text("ok")
    expect(rule.get_by_role("link")).to_contain_text('orbiter_check_status{check="fault"} == 2')

    open_page(page, cluster, "/targets")
    for agent in cluster.agents:
        row = page.locator("main tbody tr").filter(has_text=agent.agent_id)
        expect(row).to_contain_text("up")
    page.get_by_label("Health").select_option("down")
    expect(page.get_by_text("No target matches.")).to_be_visible()

    # A critical check: Satellite deactivates the agent, and reactivates it once it is fine.
    agent = cluster.idle_agent()
    agent.mark(FAULT)
    try:
        open_page(page, cluster, "/decisions")
        row = (
            page.locator("main tbody tr")
            .filter(has_text=agent.agent_id)
            .filter(has_text="deactivate")
        )
        expect(row.first).to_contain_text("taken")
        page.get_by_label("Outcome").select_option("refused")
        expect(row).to_have_count(0)
    finally:
        agent.unmark(FAULT)
    poll_until(
        lambda: cluster.master.agent(agent.agent_id)["maintenance"]["mode"] == "active",
        30, "Satellite to reactivate the agent",
    )  # fmt: skip


def test_a_promql_query_is_drawn_as_a_line_graph(page: Page, cluster: Cluster) -> None:
    open_page(page, cluster, "/query?expr=up&range=5m")
    lines = page.locator("svg.chart polyline")
    expect(lines.first).to_be_attached()
    points = lines.first.get_attribute("points") or ""
    assert len(points.split()) >= 2, points
    expect(page.locator(".legend")).to_contain_text('job="agent"')
    page.get_by_label("PromQL expression").fill("sum(up) by (job")
    page.get_by_role("button", name="Execute").click()
    expect(page.get_by_role("alert")).to_be_visible()  # the parse error, said in the page


def test_with_authentication_the_page_asks_for_a_token(browser: Browser, tmp_path: Path) -> None:
    """A master with --credentials: the page loads, asks for a token, and works with it."""
    procs = ProcessGroup()
    creds = tmp_path / "credentials.yml"
    creds.write_text(f"principals:\n  - {{name: ops, token: {TOKEN}}}\n")
    port, http_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    proc = procs.start(
        [*ORBITER, "master", "--work-dir", str(tmp_path / "m"), "--port", str(port),
         "--http-port", str(http_port), "--no-satellite", "--credentials", str(creds)],
        tmp_path / "master.log",
    )  # fmt: skip
    try:

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "master.log").read_text()
            try:
                return call("GET", f"{url}/health", timeout=1.0)["status"] == "ok"
            except OSError:
                return False

        poll_until(up, 20, "the master with credentials to answer /health")
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{url}/")
        expect(page.locator("#token-why")).to_contain_text("wants a bearer token")
        page.get_by_label(re.compile("Bearer token")).fill(TOKEN)
        page.get_by_role("button", name="Use token").click()
        expect(page.get_by_role("region", name="Leading master")).to_contain_text(f":{port}")
        assert page.evaluate("sessionStorage.getItem('orbiter.token')") == TOKEN
        context.close()
    finally:
        procs.stop_all()


def test_a_standbys_ui_sends_the_browser_to_the_leaders(
    browser: Browser, zookeeper: Any, processes: Any, tmp_path: Path
) -> None:
    """Two masters on ZooKeeper: the standby redirects the page (and so every API call the
    page makes) to the leader, whose overview names itself."""
    ha = HaCluster(zookeeper, processes, tmp_path)
    ha.start_masters(2)
    leader = ha.wait_leader()
    (standby,) = [m for m in ha.masters if m is not leader]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{standby.url}/#/agents")
    expect(page).to_have_url(f"{leader.url}/#/agents")
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("region", name="Leading master")).to_contain_text(leader.address)
    context.close()
