"""Starting a run of a stored pipeline version from the server: ``POST
/api/v1/pipelines/{name}/runs`` (editor and up) and the dashboard's form both come here.

The run is executed in a background process (``python -m gristmill.server.api.launch``, the
request on its stdin, the stores from its environment as for any worker), on the server's
stack, with the code of the latest run of that version (its verified code snapshot, as
``gristmill reproduce`` restores it; the project's current code when the run recorded none)
and that run's configuration with the parameters given. The server chooses the run's id,
waits until the run is recorded (or the process failed, whose message it returns) and
answers; the run then goes on by itself, and its process beats for it like any run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gristmill.errors import (
    ConfigError,
    GristmillError,
    NotFoundError,
    ParameterError,
    did_you_mean,
)
from gristmill.server.api._common import API_PREFIX, StoreRoute
from gristmill.server.auth import Principal, Role, require

if TYPE_CHECKING:
    from gristmill.client import Client, Run
    from gristmill.server.settings import ServerSettings
    from gristmill.store import RunRecord

# How long the server waits for a started run to be recorded before it answers anyway.
RECORDED_WITHIN = 60.0
LAUNCHED_TAG = "launched-from-server"


@dataclass
class LaunchDefaults:
    """What a run of a pipeline version would use: its parameters (name → declared type,
    the value the latest run of the version used or the default) and that run."""

    pipeline: str
    spec_hash: str
    types: dict[str, str]
    values: dict[str, Any]
    required: list[str] = field(default_factory=list)
    template_run: str | None = None
    template_run_name: str | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def text_values(self) -> dict[str, str]:
        """Each value as the form shows it: strings as they are, the rest as JSON."""
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.values.items()}


def _spec_of(client: Client, pipeline: str, version: str | None) -> tuple[str, Any]:
    from gristmill.spec import PipelineSpec
    from gristmill.store.ids import pipeline_version_id

    record = client.store.get_pipeline(pipeline)
    spec_hash = version if version and version != "latest" else record.latest_spec_hash
    if spec_hash is None:
        raise NotFoundError(f"pipeline '{pipeline}' has no stored version: run it once first")
    try:
        spec_json = client.store.get_pipeline_spec(pipeline_version_id(record.name, spec_hash))
    except NotFoundError:
        raise NotFoundError(
            f"pipeline '{pipeline}' has no version {spec_hash[:12]}: give the full spec hash "
            "of a version (a run's page shows it), or 'latest'"
        ) from None
    return spec_hash, PipelineSpec.from_json(spec_json)


def latest_run_of(client: Client, pipeline: str, spec_hash: str, scan: int = 500) -> Run | None:
    """The newest run of this version of the pipeline, among its latest ``scan`` runs."""
    for run in client.list_runs(pipeline=pipeline, limit=scan):
        if run.spec_hash == spec_hash:
            return run
    return None


def launch_defaults(client: Client, pipeline: str, version: str | None = None) -> LaunchDefaults:
    spec_hash, spec = _spec_of(client, pipeline, version)
    template = latest_run_of(client, pipeline, spec_hash)
    used = template.parameters if template is not None else {}
    values: dict[str, Any] = {}
    required = []
    for name, parameter in spec.parameters.items():
        if name in used:
            values[name] = used[name]
        elif not parameter.required:
            values[name] = parameter.default
        else:
            values[name] = ""
            required.append(name)
    return LaunchDefaults(
        pipeline=spec.name,
        spec_hash=spec_hash,
        types={name: p.type for name, p in spec.parameters.items()},
        values=values,
        required=required,
        template_run=template.id if template is not None else None,
        template_run_name=template.name if template is not None else None,
        steps=[s.id for s in spec.steps],
    )


def parse_form_parameters(raw: dict[str, str], types: dict[str, str]) -> dict[str, Any]:
    """Form fields as parameter values: JSON where it parses (``0.5``, ``true``, ``[1, 2]``),
    else the text; always the text for a parameter declared ``str``."""
    values: dict[str, Any] = {}
    for name, text in raw.items():
        if types.get(name) == "str":
            values[name] = text
            continue
        try:
            values[name] = json.loads(text)
        except ValueError:
            values[name] = text
    return values


def check_parameters(defaults: LaunchDefaults, parameters: dict[str, Any]) -> None:
    for name in parameters:
        if name not in defaults.types:
            known = list(defaults.types)
            raise ParameterError(
                f"pipeline '{defaults.pipeline}' has no parameter '{name}'"
                f"{did_you_mean(name, known)}"
                + (f" (its parameters: {', '.join(known)})" if known else " (it has none)")
            )
    missing = [n for n in defaults.required if parameters.get(n) in (None, "")]
    if missing:
        raise ParameterError(
            f"pipeline '{defaults.pipeline}' needs a value for {', '.join(missing)}"
        )


# -- starting the background process ------------------------------------------------------------

_children: list[subprocess.Popen[bytes]] = []
_children_lock = threading.Lock()


def _reap() -> None:
    """Forget launched processes that ended (their exit status is collected, no zombies)."""
    with _children_lock:
        _children[:] = [p for p in _children if p.poll() is None]


def _launch_folder(settings: ServerSettings) -> Path:
    if settings.project is not None:
        folder = Path(settings.project) / ".gristmill" / "launches"
    else:
        folder = Path(tempfile.gettempdir()) / "gristmill-launches"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start_run(
    client: Client,
    settings: ServerSettings,
    pipeline: str,
    *,
    parameters: dict[str, Any],
    version: str | None = None,
    user: str,
    tags: list[str] | None = None,
    wait: float = RECORDED_WITHIN,
) -> RunRecord:
    """Start a run of ``pipeline``'s version ``version`` (the latest by default) with
    ``parameters`` in a background process, and return its record once it is recorded.
    ParameterError for an unknown or missing parameter; ConfigError with the process's
    message when it fails before recording the run."""
    defaults = launch_defaults(client, pipeline, version)
    check_parameters(defaults, parameters)
    run_id = uuid.uuid4().hex
    request = {
        "run_id": run_id,
        "pipeline": defaults.pipeline,
        "spec_hash": defaults.spec_hash,
        "parameters": parameters,
        "template_run": defaults.template_run,
        "tags": [LAUNCHED_TAG, f"launched-by:{user}", *(tags or [])],
    }
    environment = dict(os.environ)
    environment["GRISTMILL_STORE_URL"] = settings.store_url
    if settings.project is not None:
        environment["GRISTMILL_PROJECT"] = str(settings.project)
    environment.pop("GRISTMILL_SERVER_SETTINGS", None)
    log_path = _launch_folder(settings) / f"{run_id}.log"
    _reap()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gristmill.server.api.launch"],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(settings.project) if settings.project is not None else None,
            env=environment,
            start_new_session=True,  # it outlives the request (and a server restart)
        )
    assert process.stdin is not None
    process.stdin.write(json.dumps(request).encode())
    process.stdin.close()
    with _children_lock:
        _children.append(process)
    deadline = time.monotonic() + wait
    while True:
        try:
            return client.store.get_run(run_id)
        except NotFoundError:
            pass
        if process.poll() is not None:
            try:  # it may have recorded the run just before it ended
                return client.store.get_run(run_id)
            except NotFoundError:
                pass
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
            raise ConfigError(
                f"the run of pipeline '{pipeline}' could not start (exit status "
                f"{process.returncode}): {_last_error(tail)} (its output: {log_path})"
            )
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the run of pipeline '{pipeline}' (id {run_id}) was not recorded within "
                f"{wait:.0f} s; its process is still starting: see {log_path}"
            )
        time.sleep(0.05)


def _last_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: ") or "Error" in line.split(":", 1)[0]:
            return line.removeprefix("error: ")
    return lines[-1] if lines else "no output"


# -- the background process -----------------------------------------------------------------------


def run_request(request: dict[str, Any]) -> int:
    """In the background process: compile the stored version with the request's
    parameters, under the run id the server chose, and run it on the active stack."""
    import contextlib
    import dataclasses

    from gristmill.client import Client
    from gristmill.execution import compile_run
    from gristmill.options import RunConfig
    from gristmill.pipelines import execute
    from gristmill.project import make_importable
    from gristmill.reproduce import code_of, recorded_config
    from gristmill.store import Status

    client = Client()
    _, spec = _spec_of(client, request["pipeline"], request["spec_hash"])
    template = client.get_run(request["template_run"]) if request.get("template_run") else None
    base = recorded_config(template) if template is not None else RunConfig()
    config = dataclasses.replace(
        base,
        parameters={**base.parameters, **request["parameters"]},
        run_name=None,
        tags=list(dict.fromkeys([*base.tags, *request["tags"]])),
        stack=None,  # the server's stack, not the one the earlier run chose
        orchestrator=None,
    )
    code: contextlib.AbstractContextManager[None]
    if template is not None and template.environment.get("code", {}).get("snapshot"):
        code = code_of(template, "original", client)
    elif template is not None:
        code = code_of(template, "current", client)
    else:
        make_importable([client.project.root], first=True)
        code = contextlib.nullcontext()
    with code:
        plan = compile_run(spec, config, run_id=request["run_id"])
        from gristmill.errors import RunFailedError

        try:
            run = execute(plan)
        except RunFailedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"run {run.name} {run.status}")
    return 0 if run.status in Status.SUCCEEDED else 1


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        return run_request(request)
    except GristmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# -- the route ------------------------------------------------------------------------------------


class LaunchBody(BaseModel):
    """What to start: parameter values (the others as the version's latest run had them), the
    version (a spec hash; the latest by default) and tags to add."""

    parameters: dict[str, Any] = Field(default_factory=dict)
    version: str | None = Field(None, description="a spec hash, or 'latest' (the default)")
    tags: list[str] = Field(default_factory=list)


router = APIRouter(prefix=API_PREFIX, tags=["pipelines"], route_class=StoreRoute)


@router.post("/pipelines/{name}/runs", status_code=201)
def launch_run(
    request: Request,
    name: str,
    body: LaunchBody | None = None,
    principal: Principal = Depends(require(Role.EDITOR)),  # noqa: B008
) -> JSONResponse:
    """Start a run of a stored pipeline version (the latest unless ``version``) with these
    parameters on the server's stack (editor and up); answers 201 once the run is recorded,
    with its id and the dashboard page that follows it."""
    body = body or LaunchBody()
    record = start_run(
        request.app.state.client,
        request.app.state.settings,
        name,
        parameters=body.parameters,
        version=body.version,
        user=principal.user,
        tags=body.tags,
    )
    return JSONResponse(
        {
            "id": record.id,
            "name": record.name,
            "pipeline": record.pipeline_name,
            "status": record.status,
            "spec_hash": record.spec_hash,
            "url": f"/runs/{record.id}",
        },
        status_code=201,
        headers={"Location": f"/runs/{record.id}"},
    )


if __name__ == "__main__":
    sys.exit(main())
