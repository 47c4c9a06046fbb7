"""The dashboard in a real browser: Playwright drives headless Chromium (Debian's
``/usr/bin/chromium``, or ``GRISTMILL_CHROMIUM``) against a real server
(``gristmill.testing.server``) over a project where the quickstart and two small pipelines
really ran. One screenshot per test is kept under ``GRISTMILL_TEST_OUTPUT`` (default
``.cache/test-output/dashboard/``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

playwright_api = pytest.importorskip("playwright.sync_api")  # the dev extra installs it

ROOT = Path(__file__).parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"
CHROMIUM = os.environ.get("GRISTMILL_CHROMIUM", "/usr/bin/chromium")
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'

# A project's own pipelines: metric series for the charts, Markdown and HTML artifacts (one
# carrying a script that must never run), and a slow pipeline to watch live.
PIPELINES = textwrap.dedent(
    """
    import time
    from typing import Annotated

    from gristmill import log_metadata, log_metric, pipeline, step
    from gristmill.types import HTMLString, MarkdownString


    @step
    def fit(lr: float = 0.1, epochs: int = 6, note: str = "") -> Annotated[dict, "weights"]:
        loss = 1.0
        for epoch in range(epochs):
            loss *= 1 - lr
            log_metric("loss", loss, step=epoch)
        log_metadata({"final_loss": loss})
        print(f"fitted with lr={lr}")
        return {"lr": lr, "loss": loss}


    @step
    def report(
        weights: dict, note: str = ""
    ) -> tuple[Annotated[MarkdownString, "summary"], Annotated[HTMLString, "page"]]:
        summary = MarkdownString(
            f"# Report\\n\\n**loss** {weights['loss']:.3f}\\n\\n{note}\\n\\n[bad](javascript:alert(1))"
        )
        page = HTMLString("<p id='inside'>inside</p><script>parent.__xss_html = 1</script>")
        return summary, page


    @pipeline
    def series(lr: float = 0.1, epochs: int = 6, note: str = ""):
        report(fit(lr=lr, epochs=epochs, note=note), note=note)


    @step
    def slow(seconds: float = 4.0) -> int:
        print("slow step starting", flush=True)
        time.sleep(seconds)
        print("slow step done", flush=True)
        return 1


    @pipeline
    def slow_pipeline(seconds: float = 4.0):
        slow(seconds=seconds)
    """
)


def _environment(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env["GRISTMILL_PROJECT"] = str(project)
    return env


def _gristmill(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("gristmill")), *args]
    done = subprocess.run(
        command, cwd=project, env=_environment(project), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@dataclass
class Seeded:
    """The project the server shows, and the ids of the runs made in it."""

    folder: Path
    runs: dict[str, str]


def _run(folder: Path, *args: str) -> str:
    return str(json.loads(_gristmill(folder, "run", *args, "--json").stdout)["id"])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    folder = tmp_path_factory.mktemp("dashboard") / "project"
    shutil.copytree(QUICKSTART, folder, ignore=shutil.ignore_patterns(".gristmill", "__pycache__"))
    (folder / "dash_pipelines.py").write_text(PIPELINES)
    _gristmill(folder, "init", ".")
    runs = {
        "first": _run(folder, "pipeline:training"),
        "second": _run(folder, "pipeline:training", "-p", "C=0.3"),
        "series": _run(folder, "dash_pipelines:series", "-p", "lr=0.1"),
        "xss": _run(folder, "dash_pipelines:series", "-p", "lr=0.3", "-p", f"note={XSS}"),
    }
    register = textwrap.dedent(
        f"""
        from gristmill import Client
        client = Client()
        client.create_model("wine-clf", description={XSS!r})
        client.create_model_version("wine-clf", artifacts={{"model:1": "model"}})
        client.create_model_version("wine-clf", artifacts={{"model:2": "model"}})
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", register],
        cwd=folder,
        env=_environment(folder),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return Seeded(folder, runs)


@pytest.fixture(scope="module")
def server(project: Seeded) -> Iterator[Any]:
    from gristmill.testing.server import running_server

    with running_server(project.folder) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: run scripts/install-test-services.sh (it installs "
            "Debian's chromium), or set GRISTMILL_CHROMIUM to a Chromium binary"
        )
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    folder = Path(os.environ.get("GRISTMILL_TEST_OUTPUT", ROOT / ".cache" / "test-output"))
    folder = folder / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(folder / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not problems, f"script errors on the page: {problems}"


def login(page: Any, server: Any, role: str, path: str = "/runs") -> None:
    """Log in through the form a page shows to a visitor without a session."""
    page.goto(server.url + path)
    assert page.locator("section.login").is_visible()
    user = server.users[role]
    page.fill("input[name=username]", user.name)
    page.fill("input[name=password]", user.password)
    page.click("section.login button[type=submit]")
    page.wait_for_selector("header.top nav")
    assert page.locator("header .user").inner_text().startswith(user.name)


def run_ids(page: Any, server: Any, **query: str) -> list[str]:
    answer = page.request.get(server.url + "/ui/runs.json", params=query)
    assert answer.status == 200
    return re.findall(r'data-run="([0-9a-f]+)"', answer.json()["rows_html"])


# -- the tests -----------------------------------------------------------------------------------


def test_login_then_a_run_shows_its_dag_and_a_steps_logs(page: Any, server: Any) -> None:
    refused = page.goto(server.url + "/runs")
    assert refused.status == 401  # the login form, not the runs
    assert "script-src 'self'" in refused.headers["content-security-policy"]
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", "not the password")
    page.click("section.login button[type=submit]")
    assert "wrong user name or password" in page.locator(".problem").inner_text()

    forged = page.request.post(
        server.url + "/login",
        form={"username": "viewer", "password": server.users["viewer"].password},
        headers={"Origin": "https://elsewhere.example"},
        max_redirects=0,
    )
    assert forged.status == 403 and "gristmill_session" not in forged.headers.get("set-cookie", "")

    login(page, server, "viewer")
    rows = page.locator("#run-rows tr")
    assert rows.count() == 4
    assert page.locator("#run-rows").get_by_text("training").count() >= 2
    page.select_option("select[name=pipeline]", "training")
    page.click("form.filters button")
    assert page.locator("#run-rows tr").count() == 2

    page.locator("#run-rows tr a").last.click()  # the first quickstart run: nothing cached
    page.wait_for_selector("svg#dag")
    nodes = page.locator("svg#dag g.node")
    assert nodes.count() == 4
    assert (
        page.locator("svg#dag path.edge").count() == 4
    )  # load→split→{train, evaluate}, train→evaluate
    assert page.locator("svg#dag g.node.status-completed").count() == 4

    page.locator('svg#dag g[data-node="load_data"]').click()
    page.wait_for_url(re.compile(r"\?step=load_data$"))
    assert "loaded 178 rows, 14 columns" in page.locator("pre#logs").inner_text()
    assert page.locator("#step-panel h2").inner_text().startswith("Step load_data")
    outputs = page.locator("#step-panel a[href^='/artifacts/']")
    assert outputs.first.inner_text() == "wine:1"

    outputs.first.click()  # the artifact: the DataFrame's table and statistics, and lineage
    page.wait_for_selector("svg#lineage")
    assert page.locator(".visualization table.data").count() >= 2
    assert page.locator("svg#lineage g.node-artifact").count() >= 3
    assert page.locator("svg#lineage g.node.selected").count() == 1


def test_two_runs_side_by_side_with_a_metric_chart(page: Any, server: Any) -> None:
    login(page, server, "viewer", "/experiments")
    page.click("text=series")
    page.wait_for_selector("#pick-runs")
    boxes = page.locator("#pick-runs input[type=checkbox]")
    assert boxes.count() == 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#pick-runs button[type=submit]")
    page.wait_for_selector("#comparison")
    lr = page.locator('#comparison tr[data-param="lr"]')
    assert lr.get_attribute("class") == "differs"
    assert sorted(lr.locator("td").all_inner_texts()) == ["0.1", "0.3"]
    assert page.locator('#comparison tr[data-metric="final_loss"] td').count() == 2
    chart = page.locator("figure.chart").filter(has_text="loss")
    assert chart.count() == 1
    assert chart.locator("polyline.line").count() == 2  # one line per run
    assert chart.locator("circle.dot").count() == 12  # 6 epochs each
    assert chart.locator("ul.legend li").count() == 2


def test_an_editor_promotes_a_model_version_a_viewer_cannot(
    browser: Any, page: Any, server: Any
) -> None:
    login(page, server, "editor", "/models")
    page.click("#models a:text('wine-clf')")
    page.wait_for_selector("#versions")
    version = page.locator('#versions tr[data-version="1"]')
    version.locator("select[name=stage]").select_option("production")
    version.locator("button[type=submit]").click()
    page.wait_for_selector(".notice")
    assert page.locator(".notice").inner_text() == "version 1 moved to production"
    assert page.locator('#versions tr[data-version="1"] td.stage').inner_text() == "production"
    assert (
        "none → production by editor" in page.locator('#versions tr[data-version="1"]').inner_text()
    )
    # the description, a script, is shown as text
    assert page.locator("p.description").inner_text() == XSS

    viewer = browser.new_context().new_page()
    try:
        login(viewer, server, "viewer", "/models/wine-clf")
        assert viewer.locator("#versions form.stage").count() == 0
        assert "needs the editor role" in viewer.locator("main").inner_text()
        csrf = viewer.locator("meta[name=csrf-token]").get_attribute("content")
        version_id = page.locator('#versions tr[data-version="2"] form').get_attribute("action")
        refused = viewer.request.post(
            server.url + version_id, form={"stage": "staging", "csrf_token": csrf}
        )
        assert refused.status == 403
        assert "needs the editor role" in refused.text()
        forged = page.request.post(server.url + version_id, form={"stage": "staging"})
        assert forged.status == 403 and "CSRF" in forged.text()  # an editor, without the token
        assert viewer.request.get(server.url + "/admin/users").status == 403
    finally:
        viewer.context.close()
    page.reload()
    assert page.locator('#versions tr[data-version="2"] td.stage').inner_text() == "-"


def test_a_run_from_another_process_shows_live(page: Any, server: Any, project: Seeded) -> None:
    """A run recorded through the server (the REST store, an editor's token) by another
    process: it appears while it runs, its DAG and its step's logs follow it."""
    login(page, server, "viewer")
    before = page.locator("#run-rows tr").count()
    command = [
        str(Path(sys.executable).with_name("gristmill")),
        "run",
        "dash_pipelines:slow_pipeline",
        "-p",
        "seconds=8",
    ]
    through_server = {
        **_environment(project.folder),
        "GRISTMILL_STORE_URL": server.url,
        "GRISTMILL_API_TOKEN": server.token("editor"),
    }
    process = subprocess.Popen(
        command,
        cwd=project.folder,
        env=through_server,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # The list polls: the new run appears, running, without a reload.
        page.wait_for_selector("#run-rows tr.row-running", timeout=30_000)
        assert page.locator("#run-rows tr").count() == before + 1
        page.locator("#run-rows tr.row-running a").first.click()
        page.wait_for_selector('svg#dag g[data-node="slow"].status-running', timeout=15_000)
        assert page.locator("#run-status .status").inner_text() == "running"
        page.locator('svg#dag g[data-node="slow"]').click()
        # The step's logs while it runs: its first line, not its last one yet.
        page.wait_for_function(
            "document.querySelector('pre#logs')?.innerText.includes('slow step starting')",
            timeout=15_000,
        )
        assert "slow step done" not in page.locator("pre#logs").inner_text()
        assert page.locator("#run-status .status").inner_text() == "running"
        page.wait_for_selector("#run-status .status-completed", timeout=60_000)
        page.wait_for_selector('svg#dag g[data-node="slow"].status-completed')
        assert "slow step done" in page.locator("pre#logs").inner_text()
    finally:
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output


def test_an_editor_starts_a_run_with_edited_parameters(page: Any, server: Any) -> None:
    login(page, server, "editor", "/pipelines")
    page.click("#pipelines tr:has-text('series') a:text('Start a run…')")
    page.wait_for_selector("form#launch")
    assert page.locator("input[name='param.lr']").input_value() == "0.3"  # its latest run's
    page.fill("input[name='param.lr']", "0.5")
    page.fill("input[name='param.note']", "from the dashboard")
    page.click("form#launch button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    page.wait_for_selector("#run-status .status-completed", timeout=90_000)
    facts = page.locator("dl.facts").first.inner_text()
    assert "lr=0.5" in facts and "launched-from-server" in facts and "launched-by:editor" in facts

    viewer_refused = page.request.post(
        server.url + "/api/v1/pipelines/series/runs",
        data={"parameters": {"lr": 0.2}},
        headers={"Authorization": f"Bearer {server.token('viewer')}"},
    )
    assert viewer_refused.status == 403
    unknown = page.request.post(
        server.url + "/api/v1/pipelines/series/runs",
        data={"parameters": {"lrr": 0.2}},
        headers={"Authorization": f"Bearer {server.token('editor')}"},
    )
    assert unknown.status == 422 and "did you mean 'lr'" in unknown.json()["detail"]


def test_user_text_is_escaped_everywhere(page: Any, server: Any, project: Seeded) -> None:
    login(page, server, "viewer", f"/runs/{project.runs['xss']}")
    page.locator('svg#dag g[data-node="fit"]').click()
    page.wait_for_url(re.compile(r"\?step=fit$"))
    assert XSS in page.locator("dl.facts").first.inner_text()
    assert XSS in page.locator("#step-panel table.kv").first.inner_text()
    page.locator('svg#dag g[data-node="report"]').click()
    page.wait_for_url(re.compile(r"\?step=report$"))
    page.click("#step-panel a:text('summary:2')")
    page.wait_for_selector(".markdown h1")
    assert page.locator(".markdown h1").inner_text() == "Report"
    assert XSS in page.locator(".markdown").inner_text()  # raw HTML in Markdown is text
    assert page.locator(".markdown a[href^='javascript']").count() == 0
    page.go_back()
    page.click("#step-panel a:text('page:2')")
    frame = page.locator("iframe.html-view")
    assert frame.get_attribute("sandbox") == ""
    assert page.frame_locator("iframe.html-view").locator("#inside").inner_text() == "inside"
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__xss_html") is None


def test_an_admin_creates_a_token_shown_once_and_revokes_it(page: Any, server: Any) -> None:
    login(page, server, "admin", "/admin/users")
    assert page.locator("#users tr").count() == 4
    form = page.locator("#create-token")
    form.locator("select[name=user]").select_option("viewer")
    form.locator("input[name=name]").fill("laptop")
    form.locator("input[name=expires]").fill("30d")
    form.locator("button").click()
    token = page.locator("#token-value").inner_text()
    assert token.startswith("gm_")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    assert page.request.get(server.url + "/ui/runs.json", headers=headers).status == 200
    page.goto(server.url + "/admin/users")
    assert token not in page.content()  # shown once: never again
    row = page.locator("#tokens tr").filter(has_text="laptop")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:text('Revoke')").click()
    page.wait_for_selector(".notice")
    assert "revoked" in page.locator("#tokens tr").filter(has_text="laptop").inner_text()
    assert page.request.get(server.url + "/ui/runs.json", headers=headers).status == 401
