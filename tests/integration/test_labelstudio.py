"""A round through a real Label Studio and back into the loop.

Label Studio (``label-studio==1.23.2``, which ``scripts/setup.sh`` installs in its own virtual environment,
``.venv-labelstudio``, so that its pinned dependencies never meet curate's) is started on 127.0.0.1 on a free port
with a throw-away data directory and a preset admin. Through curate's CLI and Label Studio's HTTP API:

1. a project without gold selects round 0 for people (``curate run --oracle web``): 6 items, 2 experts each;
2. ``curate export --format labelstudio-tasks`` writes the tasks and the labelling config (Label Studio accepts
   both, uploaded as its web interface uploads them) and, with ``--labelstudio-url``, creates the round's Label
   Studio project with 2 annotators per task;
3. two people label in Label Studio: the admin, and an expert who joins through the organisation's invite link;
   each takes the tasks Label Studio hands out (``/next``) until none is left;
4. the JSON export, as Label Studio's Export button makes it (annotators as user ids), comes back with ``curate
   import --labelstudio-url``: the annotators are the people, by e-mail, and an unregistered one is named;
5. ``curate run`` continues past the round; curate's own Label Studio export imports into Label Studio with the
   same people.

The test is skipped, with the reason, where Label Studio is not installed; ``.ci/run`` sets
``CURATE_REQUIRE_LABEL_STUDIO=1``, which turns that skip into a failure. ``CURATE_LABEL_STUDIO`` names another
``label-studio`` executable.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, run_cli, webis_rows

LABEL_STUDIO = Path(os.environ.get("CURATE_LABEL_STUDIO", REPO / ".venv-labelstudio" / "bin" / "label-studio"))
LS_VERSION = "1.23.2"  # what scripts/setup.sh installs and the README names
ADMIN, EXPERT = "ana@example.org", "ben@example.org"
N_POOL, BUDGET = 60, 6
INIT = ["--labels", "no-clickbait,clickbait", "--positive", "clickbait", "--prompt",
        "A post is clickbait when it teases or withholds information to lure a click."]
RUN = ["--oracle", "web", "--rounds", "1", "--budget", str(BUDGET), "--student-kind", "proxy", "--quiet"]
START_TIMEOUT_S = 300  # migrations of a fresh database: about a minute on 2 busy cores

pytestmark = pytest.mark.slow


class LabelStudioServer:
    """A ``label-studio start`` subprocess on 127.0.0.1 with its own data directory and a preset admin whose
    legacy API token is ``token``; stopped with its process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)  # may start with "-": passed as --password=VALUE
        self.token = secrets.token_hex(20)
        self.log = root / "label-studio.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "HOME": str(self.root),  # nothing written to the user's ~/.local or ~/.config
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data),
            "LATEST_VERSION_CHECK": "false",  # no call to pypi.org
            "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "DISABLE_SIGNUP_WITHOUT_LINK": "true",  # people join through the invite link only
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(self.data), "--username", ADMIN, f"--password={self.password}",
                 "--user-token", self.token, "--enable-legacy-api-token", "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root, env=env,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def wait_ready(self) -> float:
        """Seconds waited until ``/health`` answers 200."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise AssertionError(f"label-studio exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"label-studio did not answer within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=60)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


@pytest.fixture
def label_studio(tmp_path: Path):
    """A Label Studio server, starting (call ``wait_ready``)."""
    if not LABEL_STUDIO.is_file():
        reason = (f"Label Studio is not installed at {LABEL_STUDIO}: `bash scripts/setup.sh` installs "
                  f"label-studio=={LS_VERSION} in .venv-labelstudio")
        if os.environ.get("CURATE_REQUIRE_LABEL_STUDIO"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = LabelStudioServer(tmp_path / "label-studio")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- helpers ------------------------------------------------------------------------------------------------


def _ok(proc: subprocess.CompletedProcess, what: str) -> str:
    assert proc.returncode == 0, f"curate {what} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def _error(proc: subprocess.CompletedProcess) -> str:
    """The one-line error of a refused command (exit 2)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    message = proc.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message, message
    return message


def _labels_per_item(project: Path) -> dict[str, list[tuple[str, str]]]:
    con = sqlite3.connect(f"file:{project / 'curate.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("select item_id, annotator, label from annotations order by id").fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for item, who, label in rows:
        out.setdefault(item, []).append((who, label))
    return out


def _sign_up(url: str, email: str, invite_url: str) -> str:
    """Join the organisation through its invite link, as a person does in the browser; the new member's API token."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        assert browser.get(invite_url).status_code == 200
        page = browser.post(invite_url, data={"email": email, "password": secrets.token_urlsafe(12),
                                              "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                            headers={"Referer": url + invite_url})
        assert page.status_code == 302, page.text[-2000:]  # signed up and in: redirected to the projects
        return browser.get("/api/current-user/token").json()["token"]


def _label_until_done(client: httpx.Client, project_id: int, answer) -> list[int]:
    """Take the tasks Label Studio hands this person (``/next``) and submit ``answer(task)`` for each, until it has
    none left; the task ids."""
    done = []
    while True:
        nxt = client.get(f"/api/projects/{project_id}/next")
        if nxt.status_code == 404:
            return done
        assert nxt.status_code == 200, nxt.text[-1000:]
        task = nxt.json()
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [answer(task)]}}]
        made = client.post(f"/api/tasks/{task['id']}/annotations", json={"result": result, "lead_time": 2.5})
        assert made.status_code == 201, made.text[-1000:]
        done.append(task["id"])
        assert len(done) <= BUDGET, "Label Studio handed out a task twice"


# -- the round trip -----------------------------------------------------------------------------------------


def test_a_round_goes_through_label_studio_and_the_loop_continues(tmp_path, label_studio, monkeypatch):
    t0 = time.monotonic()
    # 1. While Label Studio starts: a project with no gold; round 0 waits for 2 experts on each of 6 items.
    rows = webis_rows(N_POOL)
    gold = {r["id"]: r["label"] for r in rows}
    pool = tmp_path / "posts.jsonl"
    pool.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), encoding="utf-8")
    project = tmp_path / "proj"
    _ok(run_cli("init", project, "--pool", pool, *INIT), "init")
    _ok(run_cli("annotators", "add", project, ADMIN), "annotators add")  # the admin is a registered expert too
    first = _ok(run_cli("run", project, *RUN), "run")
    assert "paused" in first and f"waiting for {2 * BUDGET} labels" in first, first

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    tasks_file = tmp_path / "round0.json"
    exported = _ok(run_cli("export", project, "--format", "labelstudio-tasks", "--out", tasks_file), "export")
    config_file = tmp_path / "round0.label_config.xml"
    assert f"wrote {BUDGET} records to {tasks_file}" in exported
    assert "each task needs 2 labels from different people" in exported and "--labelstudio-url" in exported

    waited = label_studio.wait_ready()
    url = label_studio.url
    admin = label_studio.client(label_studio.token)
    assert admin.get("/api/version").json()["release"] == LS_VERSION
    # The admin's personal access token (a JWT, what Account & Settings shows by default) is what curate gets.
    access_token = admin.post("/api/token/").json()["token"]
    assert access_token.count(".") == 2
    # The expert joins through the organisation's invite link.
    expert_token = _sign_up(url, EXPERT, admin.get("/api/invite").json()["invite_url"])
    expert = label_studio.client(expert_token)
    users = {u["email"]: u["id"] for u in admin.get("/api/users/").json()}
    assert set(users) == {ADMIN, EXPERT}

    # 2a. The files as Label Studio's web interface takes them: the config pasted, tasks.json uploaded.
    files_project = admin.post("/api/projects/", json={"title": "from the files",
                                                       "label_config": config_file.read_text(encoding="utf-8")})
    assert files_project.status_code == 201, files_project.text[-1000:]
    with tasks_file.open("rb") as fh:
        upload = admin.post(f"/api/projects/{files_project.json()['id']}/import",
                            files={"file": ("round0.json", fh, "application/json")})
    assert upload.status_code == 201 and upload.json()["task_count"] == BUDGET, upload.text[-1000:]
    uploaded = admin.get("/api/tasks", params={"project": files_project.json()["id"], "page_size": 100}).json()
    selected = [t["data"]["item_id"] for t in json.loads(tasks_file.read_text(encoding="utf-8"))]
    assert sorted(t["data"]["item_id"] for t in uploaded["tasks"]) == sorted(selected)

    # 2b. curate creates the round's project: the labelling config, 2 annotators per task, the 6 tasks.
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", access_token)
    made = _ok(run_cli("export", project, "--format", "labelstudio-tasks", "--out", tasks_file,
                       "--labelstudio-url", url + "/"), "export --labelstudio-url")
    found = re.search(rf"created Label Studio project (\d+) with the round's {BUDGET} tasks, 2 annotators per task: "
                      rf"{re.escape(url)}/projects/(\d+)/data", made)
    assert found and found.group(1) == found.group(2), made
    pid = int(found.group(1))
    settings = admin.get(f"/api/projects/{pid}/").json()
    assert settings["maximum_annotations"] == 2 and settings["task_number"] == BUDGET
    assert settings["label_config"].strip() == config_file.read_text(encoding="utf-8").strip()

    # 3. Two people label; the expert disagrees with the admin on the first task handed out.
    ana = _label_until_done(admin, pid, lambda task: gold[task["data"]["item_id"]])
    flipped: list[str] = []

    def ben_answer(task: dict) -> str:
        label = gold[task["data"]["item_id"]]
        if not flipped:
            flipped.append(task["data"]["item_id"])
            return "clickbait" if label == "no-clickbait" else "no-clickbait"
        return label

    ben = _label_until_done(expert, pid, ben_answer)
    assert sorted(ana) == sorted(ben) and len(ana) == BUDGET  # each task went to both, and to no third

    # 4. Label Studio's JSON export, as its Export button fetches it: the annotators are user ids.
    response = admin.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
    assert response.status_code == 200
    ls_export = tmp_path / response.headers["filename"]
    ls_export.write_bytes(response.content)
    annotations = [a for task in response.json() for a in task["annotations"]]
    assert len(annotations) == 2 * BUDGET and {type(a["completed_by"]) for a in annotations} == {int}

    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    no_map = _error(run_cli("import", project, ls_export, "--round", "0"))
    assert "completed_by is Label Studio's user id" in no_map and "--labelstudio-url" in no_map
    no_token = _error(run_cli("import", project, ls_export, "--round", "0", "--labelstudio-url", url))
    assert "LABEL_STUDIO_API_KEY" in no_token
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-a-token")
    refused = _error(run_cli("import", project, ls_export, "--round", "0", "--labelstudio-url", url))
    assert "refused the API token" in refused and "HTTP 401" in refused
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", access_token)
    unknown = _error(run_cli("import", project, ls_export, "--round", "0", "--labelstudio-url", url))
    assert f"annotator '{EXPERT}' is not registered" in unknown
    assert f"curate annotators add {project} {EXPERT}" in unknown and "--register-annotators" in unknown
    assert _labels_per_item(project) == {}  # refused whole

    imported = _ok(run_cli("import", project, ls_export, "--round", "0", "--labelstudio-url", url,
                           "--register-annotators"), "import")
    assert f"added {2 * BUDGET} annotations" in imported and "registered 1 annotators" in imported
    assert imported.rstrip().endswith(EXPERT), imported
    per_item = _labels_per_item(project)
    assert len(per_item) == BUDGET and {len(v) for v in per_item.values()} == {2}
    assert {who for v in per_item.values() for who, _ in v} == {ADMIN, EXPERT}
    assert dict(per_item[flipped[0]])[ADMIN] != dict(per_item[flipped[0]])[EXPERT]
    assert all(dict(v)[ADMIN] == gold[i] for i, v in per_item.items())
    # The same file with the legacy token: the people are the same, nothing is added twice.
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    again = _ok(run_cli("import", project, ls_export, "--round", "0", "--labelstudio-url", url), "import again")
    assert f"added 0 annotations, {2 * BUDGET} were already there" in again

    # 5. The loop continues past the round.
    done = _ok(run_cli("run", project, *RUN), "run after the import")
    assert "waiting" not in done and "done:" in done, done
    metrics = json.loads((project / "rounds" / "r001" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["items_labelled"] == BUDGET and metrics["expert_expert_kappa"] < 1

    # curate's own Label Studio export goes into Label Studio with the same people (completed_by by e-mail).
    ours = tmp_path / "curate-annotations.json"
    _ok(run_cli("export", project, "--format", "labelstudio", "--out", ours), "export --format labelstudio")
    back = admin.post("/api/projects/", json={"title": "curate's labels", "maximum_annotations": 2,
                                              "label_config": config_file.read_text(encoding="utf-8")}).json()
    with ours.open("rb") as fh:
        loaded = admin.post(f"/api/projects/{back['id']}/import", files={"file": ("labels.json", fh, "application/json")})
    assert loaded.status_code == 201 and loaded.json()["annotation_count"] == 2 * BUDGET, loaded.text[-1000:]
    round_trip = admin.get(f"/api/projects/{back['id']}/export", params={"exportType": "JSON"}).json()
    people = Counter(a["completed_by"] for task in round_trip for a in task["annotations"])
    assert people == Counter({users[ADMIN]: BUDGET, users[EXPERT]: BUDGET})
    print(f"\nLabel Studio {LS_VERSION}: ready {waited:.0f} s after curate's first run; whole test {time.monotonic() - t0:.0f} s")
