"""The dashboard's pages and the small JSON endpoints their script polls. Every route declares
its role (``require``: viewer to read, editor to promote and start runs, admin for users and
tokens; ``public`` only for the login form); data comes from the server's ``Client``.

Pages answer a browser in HTML, also when they refuse: 401 shows the login form (with the
page to come back to), 403 says which role is needed; an API client (no ``text/html`` in
``Accept``) gets the server's JSON refusals. Every HTML answer carries a Content Security
Policy that allows only this server's own script and styles, and no framing."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from gristmill.errors import (
    AuthError,
    ConfigError,
    GristmillError,
    LoginThrottledError,
    NotFoundError,
    StoreError,
)
from gristmill.server import http_status
from gristmill.server.auth import (
    SESSION_COOKIE,
    Principal,
    Role,
    authenticate_password,
    clear_session_cookies,
    client_address,
    end_session,
    login_limits,
    public,
    require,
    set_session_cookies,
    start_session,
)
from gristmill.server.dashboard import views
from gristmill.server.dashboard.render import environment
from gristmill.store import Status

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
VIEWER = Depends(require(Role.VIEWER))
EDITOR = Depends(require(Role.EDITOR))
ADMIN = Depends(require(Role.ADMIN))


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class PageRoute(APIRoute):
    """A dashboard route: refusals and gristmill errors become HTML pages for a browser,
    and HTML answers get the Content Security Policy."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as exc:
                if not _wants_html(request) or exc.status_code not in (401, 403):
                    raise
                response = _refusal(request, exc)
            except GristmillError as exc:
                if not _wants_html(request):
                    raise
                response = page(
                    request,
                    "error.html",
                    status=http_status(exc),
                    heading="Not found" if isinstance(exc, NotFoundError) else "Refused",
                    message=str(exc),
                )
            if response.media_type == "text/html" or isinstance(response, HTMLResponse):
                response.headers.setdefault("Content-Security-Policy", CSP)
                response.headers.setdefault("Cache-Control", "no-store")
            return response

        return handle


def _refusal(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 401:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = page(
            request,
            "login.html",
            status=401,
            principal=None,
            next_url=wanted if request.method == "GET" else "/runs",
            problem=None if SESSION_COOKIE not in request.cookies else str(exc.detail),
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return page(request, "error.html", status=403, heading="Not allowed", message=str(exc.detail))


router = APIRouter(route_class=PageRoute, tags=["dashboard"])


# -- helpers ------------------------------------------------------------------------------------


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("principal", getattr(request.state, "principal", None))
    context.setdefault("notice", _notice(request))
    context.setdefault("problem", None)
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status)


def _notice(request: Request) -> str | None:
    """The confirmation a redirect after a change asks for (a code, never free text from
    the URL: a link cannot make the page say something else)."""
    query = request.query_params
    done = query.get("done")
    if done == "staged":
        number, stage = query.get("version", ""), query.get("stage", "")
        if number.isdigit() and stage in views.STAGES:
            return f"version {number} moved to {stage}"
    if done == "revoked":
        return "the token was revoked: it no longer authenticates"
    return None


def live_json(request: Request, payload: Any) -> Response:
    """``payload`` as JSON with an ETag; 304 with no body when the poller has it already."""
    tag = views.etag_of(payload)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(payload, headers=headers)


def _client(request: Request) -> Any:
    return request.app.state.client


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this server only (no ``//host`` or scheme)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/runs"
    return target


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- login and logout ---------------------------------------------------------------------------


@router.get("/", dependencies=[VIEWER], include_in_schema=False)
def home() -> RedirectResponse:
    return _redirect("/runs")


@router.get("/login", dependencies=[Depends(public)], response_class=HTMLResponse)
def login_form(request: Request, next: str | None = Query(None)) -> HTMLResponse:
    """The login form (open to anyone)."""
    return page(request, "login.html", principal=None, next_url=_safe_next(next))


@router.post("/login", dependencies=[Depends(public)], response_class=HTMLResponse)
def login(
    request: Request,
    username: str = Form(...),
    password: str = Form(...),
    next: str = Form("/runs"),
) -> Response:
    """Check a user name and password (failed attempts are rate-limited) and start a
    dashboard session: the HttpOnly session cookie and the CSRF cookie."""
    # Login CSRF: a form posted from another site is refused. Hosts are compared, not
    # schemes: behind a TLS proxy the server may see http while the browser says https.
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return page(
            request,
            "login.html",
            status=403,
            principal=None,
            next_url="/runs",
            problem="login refused: the form was sent from another site",
        )
    store = request.app.state.store
    settings = request.app.state.settings
    address = client_address(request)
    try:
        user = authenticate_password(
            store, username, password, address=address, limits=login_limits(settings)
        )
    except LoginThrottledError as exc:
        response = page(
            request, "login.html", status=429, principal=None, next_url=next, problem=str(exc)
        )
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except AuthError as exc:
        return page(
            request, "login.html", status=401, principal=None, next_url=next, problem=str(exc)
        )
    cookie, session = start_session(
        store, user, lifetime=settings.session_lifetime, address=address
    )
    redirect = _redirect(_safe_next(next))
    set_session_cookies(redirect, cookie, session.csrf_token, settings=settings)
    return redirect


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, principal: Principal = VIEWER) -> Response:
    """End this browser's session (CSRF-checked like every form)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        end_session(request.app.state.store, cookie)
    response = _redirect("/login")
    clear_session_cookies(response, settings=request.app.state.settings)
    return response


# -- runs ---------------------------------------------------------------------------------------


def _run_filter(
    pipeline: str | None = None,
    status: str | None = None,
    experiment: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    page_number: int = Query(1, ge=1, alias="page"),
) -> views.RunFilter:
    """The runs list's filters and page, from the query (a dependency of both its routes)."""
    if status and status not in Status.ALL:
        raise ConfigError(f"status '{status}' is not one of {', '.join(Status.ALL)}")
    return views.RunFilter(
        pipeline=pipeline or None,
        status=status or None,
        experiment=experiment or None,
        tag=(tag or "").strip() or None,
        q=(q or "").strip() or None,
        page=page_number,
    )


RUN_FILTER = Depends(_run_filter)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    principal: Principal = VIEWER,
    wanted: views.RunFilter = RUN_FILTER,
) -> HTMLResponse:
    """Runs, newest first, with filters and search; the table follows new runs live."""
    client = _client(request)
    result = views.list_runs(client, wanted)
    return page(
        request,
        "runs.html",
        result=result,
        wanted=wanted,
        pipelines=[p.name for p in client.store.list_pipelines()],
        experiments=[e.name for e in client.list_experiments()],
        statuses=Status.ALL,
        window=views.SEARCH_WINDOW,
    )


@router.get("/ui/runs.json")
def runs_live(
    request: Request,
    principal: Principal = VIEWER,
    wanted: views.RunFilter = RUN_FILTER,
) -> Response:
    """The runs table's rows (rendered and escaped by the page's own template) and the
    number of runs, for the list's live updates."""
    result = views.list_runs(_client(request), wanted)
    macros: Any = environment().get_template("_macros.html").module
    rows_html = str(macros.run_rows(result.runs))
    return live_json(
        request, {"total": result.total, "active": result.active, "rows_html": rows_html}
    )


@router.get("/runs/{run_ref}", response_class=HTMLResponse)
def run_page(
    request: Request,
    run_ref: str = Path(..., description="run id, id prefix or name"),
    step: str | None = None,
    principal: Principal = VIEWER,
) -> HTMLResponse:
    """A run: its facts, its DAG coloured by live status, and one step's panel
    (parameters, inputs, outputs, metadata, logs)."""
    client = _client(request)
    run = client.get_run(run_ref)
    chosen = views.choose_step(run, step)
    context: dict[str, Any] = {
        "run": run,
        "state": views.run_state(run),
        "dag": views.run_graph(run),
        "metrics": run.metrics,
        "step": chosen,
        "inputs": {},
        "outputs": {},
        "step_metadata": {},
        "logs": "",
        "logs_note": None,
    }
    if chosen is not None:
        context["inputs"] = chosen.inputs
        context["outputs"] = chosen.outputs
        context["step_metadata"] = chosen.metadata
        context["logs"], context["logs_note"] = views.step_logs(chosen)
    return page(request, "run.html", **context)


@router.get("/ui/runs/{run_ref}/state.json")
def run_live(request: Request, run_ref: str, principal: Principal = VIEWER) -> Response:
    """A run's status and each step's status, duration and cache hit, for the run page."""
    return live_json(request, views.run_state(_client(request).get_run(run_ref)))


@router.get("/ui/runs/{run_ref}/steps/{step_name}/logs.json")
def step_logs_live(
    request: Request, run_ref: str, step_name: str, principal: Principal = VIEWER
) -> Response:
    """One step's logs (their tail) and status, for the step panel to follow."""
    step = _client(request).get_run(run_ref).step(step_name)
    text, note = views.step_logs(step)
    return live_json(request, {"status": step.status, "text": text, "note": note})


# -- artifacts ----------------------------------------------------------------------------------


@router.get("/artifacts/{ref}", response_class=HTMLResponse)
def artifact_page(request: Request, ref: str, principal: Principal = VIEWER) -> HTMLResponse:
    """An artifact version: its facts and metadata, the materializer's visualization and
    its lineage up and down as a graph."""
    client = _client(request)
    version = client.get_artifact_version(ref)
    metadata, shown = views.artifact_metadata(version)
    producer = version.producer
    producer_run = producer.run if producer is not None else None
    return page(
        request,
        "artifact.html",
        av=version,
        metadata=metadata,
        shown=shown,
        producer=(
            {"name": producer.name, "run_id": producer_run.id}
            if producer is not None and producer_run is not None
            else None
        ),
        producer_run_name=producer_run.name if producer_run else "",
        same=version.same_content()[:20],
        lineage=views.lineage_graph(client, version),
    )


# -- experiments --------------------------------------------------------------------------------


@router.get("/experiments", response_class=HTMLResponse)
def experiments_page(
    request: Request, name: str | None = None, principal: Principal = VIEWER
) -> HTMLResponse:
    """Experiments, and one experiment's runs with their parameters and final metrics, to
    pick runs to compare."""
    client = _client(request)
    experiments = client.list_experiments()
    runs = client.list_runs(experiment=name, limit=views.PAGE_SIZE) if name else []
    finals = views.final_metrics(client, [r.id for r in runs]) if runs else {}
    parameters = list(dict.fromkeys(k for r in runs for k in r.parameters))
    metric_names = list(dict.fromkeys(k for r in runs for k in finals.get(r.id, {})))
    return page(
        request,
        "experiments.html",
        experiments=experiments,
        chosen=name,
        runs=runs,
        finals=finals,
        parameters=parameters,
        metric_names=metric_names,
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    run: Annotated[list[str] | None, Query(description="run ids or names")] = None,
    principal: Principal = VIEWER,
) -> HTMLResponse:
    """Runs side by side: parameters, final metrics, and each metric series as a line
    chart with one line per run."""
    run = run or []
    if len(run) < 2:
        raise ConfigError("pick at least two runs to compare (tick them on the experiments page)")
    view = views.compare(_client(request), run[:20])
    return page(request, "compare.html", view=view)


# -- models -------------------------------------------------------------------------------------


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, principal: Principal = VIEWER) -> HTMLResponse:
    """The model registry: models, their number of versions, who is in staging and
    production."""
    return page(request, "models.html", models=views.model_summary(_client(request)))


def _model_page(
    request: Request, name: str, principal: Principal, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    client = _client(request)
    model = client.get_model(name)
    return page(
        request,
        "model.html",
        status=status,
        model=model,
        versions=views.model_versions(client, model.name),
        stages=views.STAGES,
        can_promote=principal.at_least(Role.EDITOR),
        **extra,
    )


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str, principal: Principal = VIEWER) -> HTMLResponse:
    """One model: its versions, their stages and stage history, linked artifacts, and (for
    editors) a form to move a version to another stage."""
    return _model_page(request, name, principal)


@router.post("/models/{name}/versions/{version_id}/stage", response_class=HTMLResponse)
def promote(
    request: Request,
    name: str,
    version_id: str,
    stage: str = Form(...),
    note: str = Form(""),
    force: bool = Form(False),
    principal: Principal = EDITOR,
) -> Response:
    """Move a model version to a stage (editor and up; CSRF-checked)."""
    if stage not in views.STAGES:
        raise ConfigError(f"stage '{stage}' is not one of {', '.join(views.STAGES)}")
    store = request.app.state.store
    version = store.get_model_version(name, version_id)
    try:
        store.set_model_version_stage(
            version.id,
            None if stage == "none" else stage,
            force=force,
            user=principal.user,
            at=time.time(),
            note=note.strip() or None,
        )
    except StoreError as exc:
        return _model_page(request, name, principal, status=409, problem=str(exc))
    query = urlencode({"done": "staged", "version": version.number, "stage": stage})
    return _redirect(f"/models/{quote(name)}?{query}")


# -- stacks -------------------------------------------------------------------------------------


@router.get("/stacks", response_class=HTMLResponse)
def stacks_page(request: Request, principal: Principal = VIEWER) -> HTMLResponse:
    """Stacks, their components and every registered component, with settings that look
    secret redacted; secrets by name and key only."""
    store = request.app.state.store
    settings = request.app.state.settings
    active = None
    if settings.project is not None:
        try:
            from gristmill.project import Project

            active = Project(settings.project).stack_name
        except GristmillError:
            active = None
    return page(
        request,
        "stacks.html",
        stacks=store.list_stacks(),
        components=store.list_components(),
        secrets=store.list_secrets(),
        active=active,
    )


# -- pipelines: start a run ---------------------------------------------------------------------


@router.get("/pipelines", response_class=HTMLResponse)
def pipelines_page(request: Request, principal: Principal = VIEWER) -> HTMLResponse:
    """Stored pipelines, their versions and runs; editors start runs from here."""
    return page(
        request,
        "pipelines.html",
        pipelines=request.app.state.store.list_pipelines(),
        can_launch=principal.at_least(Role.EDITOR),
    )


@router.get("/pipelines/{name}/launch", response_class=HTMLResponse)
def launch_form(
    request: Request,
    name: str,
    version: str | None = None,
    principal: Principal = EDITOR,
) -> HTMLResponse:
    """The form to start a run of a pipeline version with edited parameters (editor)."""
    from gristmill.server.api.launch import launch_defaults

    defaults = launch_defaults(_client(request), name, version)
    return page(request, "launch.html", form=defaults, values=defaults.text_values)


@router.post("/pipelines/{name}/launch", response_class=HTMLResponse)
async def launch(request: Request, name: str, principal: Principal = EDITOR) -> Response:
    """Start the run on the server's stack in a background process and open its page."""
    from starlette.concurrency import run_in_threadpool

    from gristmill.server.api.launch import launch_defaults, parse_form_parameters, start_run

    form = await request.form()
    version = str(form.get("version") or "") or None
    client = _client(request)
    defaults = await run_in_threadpool(launch_defaults, client, name, version)
    raw = {
        key.removeprefix("param."): str(value)
        for key, value in form.items()
        if key.startswith("param.")
    }
    try:
        parameters = parse_form_parameters(raw, defaults.types)
        started = await run_in_threadpool(
            start_run,
            client,
            request.app.state.settings,
            name,
            parameters=parameters,
            version=defaults.spec_hash,
            user=principal.user,
        )
    except GristmillError as exc:
        return page(request, "launch.html", status=400, form=defaults, values=raw, problem=str(exc))
    return _redirect(f"/runs/{started.id}")


# -- users and tokens (admin) -------------------------------------------------------------------


def _admin_page(request: Request, *, status: int = 200, **extra: Any) -> HTMLResponse:
    store = request.app.state.store
    return page(
        request,
        "admin.html",
        status=status,
        users=store.list_users(),
        tokens=store.list_api_tokens(include_revoked=True),
        roles=[r.value for r in Role],
        **{"new_token": None, **extra},
    )


@router.get("/admin/users", response_class=HTMLResponse)
def admin_page(request: Request, principal: Principal = ADMIN) -> HTMLResponse:
    """Users with their roles, and every API token (admin)."""
    return _admin_page(request)


@router.post("/admin/tokens", response_class=HTMLResponse)
def create_token_form(
    request: Request,
    user: str = Form(...),
    name: str = Form(...),
    role: str = Form(""),
    expires: str = Form(""),
    principal: Principal = ADMIN,
) -> HTMLResponse:
    """Create an API token; the page shows it this once (only its hash is stored)."""
    from gristmill.server.credentials import create_token, parse_duration

    store = request.app.state.store
    try:
        expires_in = parse_duration(expires, "expires") if expires.strip() else None
        token, record = create_token(
            store, user, name=name, role=role or None, expires_in=expires_in, limit=principal.role
        )
    except GristmillError as exc:
        return _admin_page(request, status=400, problem=str(exc))
    return _admin_page(request, status=201, new_token=(token, record))


@router.post("/admin/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token_form(request: Request, token_id: str, principal: Principal = ADMIN) -> Response:
    """Revoke an API token (it stays listed, as revoked)."""
    request.app.state.store.revoke_api_token(token_id, time.time())
    return _redirect("/admin/users?done=revoked")
