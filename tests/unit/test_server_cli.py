"""`gristmill user ...` and `gristmill token ...` on the project's real store."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from gristmill.cli.main import cli
from gristmill.project import Project
from gristmill.server.credentials import authenticate_password, authenticate_token

PASSWORD = "correct horse battery"


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def test_user_commands(project: Project) -> None:
    made = invoke("user", "create", "ann", "--role", "admin", "--password-stdin", input=PASSWORD)
    assert made.exit_code == 0, made.output
    store = project.store()
    assert authenticate_password(store, "ann", PASSWORD).role == "admin"
    # the prompt asks twice
    prompted = invoke("user", "create", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert store.get_user("bob").role == "viewer"
    mismatch = invoke("user", "create", "cy", input=f"{PASSWORD}\nother one\n" * 1)
    assert mismatch.exit_code != 0
    again = invoke("user", "create", "ann", "--password-stdin", input=PASSWORD)
    assert again.exit_code == 2 and "exists already" in again.output
    short = invoke("user", "create", "dee", "--password-stdin", input="short")
    assert short.exit_code == 2 and "too short" in short.output

    listed = json.loads(invoke("users", "list", "--json").output)
    assert [(u["name"], u["role"]) for u in listed] == [("ann", "admin"), ("bob", "viewer")]
    assert "argon2" not in invoke("user", "list", "--json").output

    last = invoke("user", "set-role", "ann", "viewer")
    assert last.exit_code == 2 and "only admin" in last.output
    assert invoke("user", "set-role", "bob", "editor").exit_code == 0
    assert store.get_user("bob").role == "editor"
    changed = invoke("user", "set-password", "bob", "--password-stdin", input="a new passphrase")
    assert changed.exit_code == 0
    assert authenticate_password(store, "bob", "a new passphrase").name == "bob"
    assert invoke("user", "delete", "bob", "--yes").exit_code == 0
    assert "no user named 'bob'" in invoke("user", "delete", "bob", "--yes").output


def test_token_commands(project: Project) -> None:
    none_yet = invoke("token", "create", "--name", "ci")
    assert none_yet.exit_code == 2 and "gristmill user create NAME --role admin" in none_yet.output
    invoke("user", "create", "ann", "--role", "editor", "--password-stdin", input=PASSWORD)
    made = invoke("token", "create", "--name", "ci", "--role", "viewer", "--expires", "30d")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    store = project.store()
    principal = authenticate_token(store, token)
    assert (principal.user, principal.role.value) == ("ann", "viewer")
    too_high = invoke("token", "create", "--name", "x", "--role", "admin")
    assert too_high.exit_code == 1 and "the most it may have is editor" in too_high.output
    bad_expiry = invoke("token", "create", "--name", "x", "--expires", "soon")
    assert bad_expiry.exit_code == 2 and "such as 30d" in bad_expiry.output

    listed = invoke("tokens", "list", "--json")
    assert token not in listed.output
    (entry,) = json.loads(listed.output)
    assert entry["name"] == "ci" and entry["expires_at"] is not None
    assert invoke("token", "revoke", entry["id"][:8]).exit_code == 0
    assert json.loads(invoke("token", "list", "--json").output) == []
    assert len(json.loads(invoke("token", "list", "--revoked", "--json").output)) == 1
