"""Bad input through the real command line: one line on stderr, exit 2, the project folder as it was."""

import json

import pytest

from tests.conftest import run_cli, webis_rows

INIT = ["--labels", "no-clickbait,clickbait", "--positive", "clickbait", "--prompt", "clickbait policy"]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _good_rows():
    return [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in webis_rows(5)]


def _bad_files(tmp_path):
    rows = _good_rows()
    yield "missing text", _jsonl(tmp_path / "a.jsonl", rows[:2] + [{"id": "x", "label": "clickbait"}]), [], ["line 3", "text"]
    yield "empty text", _jsonl(tmp_path / "b.jsonl", rows[:1] + [{"id": "y", "text": "  ", "label": "clickbait"}]), [], ["line 2", "text"]
    dup = rows[:3] + [dict(rows[1])]
    yield "duplicate id", _jsonl(tmp_path / "c.jsonl", dup), [], ["line 4", "line 2", rows[1]["id"]]
    bad_label = rows[:2] + [{"id": "z", "text": "t", "label": "spam"}]
    yield "label outside --labels", _jsonl(tmp_path / "d.jsonl", bad_label), ["--gold-field", "label"], ["line 3", "spam"]
    raw = (tmp_path / "e.jsonl")
    raw.write_bytes(b'{"id": "1", "text": "ok"}\n{"id": "2", "text": "caf\xe9"}\n')
    yield "not UTF-8", raw, [], ["line 2", "UTF-8"]
    broken = tmp_path / "f.jsonl"
    broken.write_text('{"id": "1", "text": "ok"}\n{"id": "2", "text": \n', encoding="utf-8")
    yield "not JSON", broken, [], ["line 2", "JSON"]
    csv = tmp_path / "g.csv"
    csv.write_text('id,text\n1,hello\n2,"unterminated\n', encoding="utf-8")
    yield "bad CSV", csv, [], ["g.csv", "line"]
    ragged = tmp_path / "h.csv"
    ragged.write_text("id,text\n1,hello\n2,hi,extra\n", encoding="utf-8")
    yield "ragged CSV", ragged, [], ["line 3"]
    yield "missing column", _jsonl(tmp_path / "i.jsonl", rows), ["--text-field", "body"], ["body", "text"]


def test_bad_pool_files_give_one_line_and_leave_no_project(tmp_path):
    failures = []
    for name, path, extra, expected in _bad_files(tmp_path):
        project = tmp_path / f"proj-{path.stem}"
        proc = run_cli("init", project, "--pool", path, *INIT, *extra)
        err = proc.stderr.strip()
        ok = (
            proc.returncode == 2
            and len(err.splitlines()) == 1
            and err.startswith("error:")
            and path.name in err
            and all(e in err for e in expected)
            and not project.exists()
        )
        if not ok:
            failures.append(f"{name}: rc={proc.returncode} stderr={err!r} exists={project.exists()}")
    assert not failures, "\n".join(failures)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".proj")]
    assert leftovers == []


def test_existing_project_and_bad_run_options_change_nothing(tmp_path):
    pool = _jsonl(tmp_path / "pool.jsonl", _good_rows())
    project = tmp_path / "proj"
    run_cli("init", project, "--pool", pool, *INIT, check=True)
    before = {p.name: p.stat().st_mtime_ns for p in project.iterdir()}
    again = run_cli("init", project, "--pool", pool, *INIT)
    assert again.returncode == 2 and "already exists" in again.stderr
    # A gold column with a value outside the labels, given only at run time.
    bad = run_cli("run", project, "--gold-field", "text", "--quiet")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "not one of the labels" in bad.stderr and "row 1" in bad.stderr
    missing = run_cli("run", project, "--gold-field", "nope", "--quiet")
    assert missing.returncode == 2 and "no column 'nope'" in missing.stderr
    neg = run_cli("run", project, "--budget", "0", "--quiet")
    assert neg.returncode == 2 and "--budget 0: must be at least 1" in neg.stderr
    after = {p.name: p.stat().st_mtime_ns for p in project.iterdir()}
    assert after == before
    assert run_cli("report", tmp_path / "nowhere").returncode == 2


@pytest.mark.parametrize("labels,positive,message", [("clickbait", "clickbait", "at least two"), ("a,b", "c", "positive")])
def test_bad_label_options(tmp_path, labels, positive, message):
    pool = _jsonl(tmp_path / "pool.jsonl", _good_rows())
    proc = run_cli("init", tmp_path / "p", "--pool", pool, "--labels", labels, "--positive", positive, "--prompt", "x")
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "p").exists()


@pytest.mark.parametrize("args, message", [
    (["experiment", "cost-sweep", "--budgets", "16,x"], "--budgets '16,x': give comma-separated numbers"),
    (["experiment", "cost-sweep", "--methods", "magic"], "unknown methods/weak sources ['magic']"),
    (["experiment", "cost-sweep", "--shares", "0,1.5"], "shares must lie in [0, 1]"),
    (["experiment", "cost-sweep", "--methods", "sequential+magic", "--project", "x"], "unknown methods/weak sources"),
    (["experiment", "cost-sweep", "--student", "big", "--project", "x"], "student 'big': use proxy or finetune"),
    (["experiment", "cost-sweep", "--quick"], "give --project EXISTING"),
    (["experiment", "label-efficiency", "--conditions", "magic", "--pool", "x.jsonl", "--labels", "a,b",
      "--positive", "b"], "--conditions: condition 'magic': unknown query strategy 'magic'"),
    (["experiment", "label-efficiency", "--conditions", "uncertainty+tea", "--project", "x"], "unknown weak source 'tea'"),
    (["experiment", "label-efficiency", "--student", "big"], "give --project EXISTING"),
    (["experiment", "label-efficiency", "--precision", "fp16", "--project", "x"],
     "--precision 'fp16': use auto, bf16 or fp32"),
    (["experiment", "cost-sweep", "--precision", "half", "--project", "x"], "--precision 'half': use auto, bf16 or fp32"),
])
def test_bad_experiment_options_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    proc = run_cli(*args, "--out", out, "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_init_llm_switch_sets_scout_and_student(tmp_path):
    pool = _jsonl(tmp_path / "pool.jsonl", _good_rows())
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({"clickbait": ["You won't believe this", "10 tricks"],
                                 "no-clickbait": ["Senate passes bill", "Oil prices fall"]}))
    proc = run_cli("init", tmp_path / "p", "--pool", pool, *INIT, "--seed-examples", seeds, "--llm",
                   "--device", "cuda")
    assert proc.returncode == 0, proc.stderr
    import tomllib

    cfg = tomllib.loads((tmp_path / "p" / "curate.toml").read_text())
    assert cfg["scout"]["kind"] == "prompted-lm" and cfg["scout"]["demonstrations"] == 2
    assert cfg["student"]["model"] == cfg["scout"]["model"] == "bundled:SmolLM2-135M-Instruct"
    assert cfg["student"]["finetune"] == "lora" and cfg["student"]["device"] == cfg["scout"]["device"] == "cuda"
    proc = run_cli("init", tmp_path / "q", "--pool", pool, *INIT, "--llm-model", tmp_path)
    assert proc.returncode == 2 and "--llm-model needs --llm" in proc.stderr and not (tmp_path / "q").exists()


def _own_pool(tmp_path, gold=True):
    """A small pool of the user's own (no shared data): ids, texts and, with ``gold``, a label column."""
    rows = [{"id": f"t{k}", "text": f"headline number {k}", **({"label": LABELS[k % 2]} if gold else {})}
            for k in range(12)]
    return _jsonl(tmp_path / "own.jsonl", rows)


LABELS = ["no-clickbait", "clickbait"]
OWN = ["--labels", ",".join(LABELS), "--prompt", "clickbait policy"]


def _one_line_error(proc) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("error:"), (proc.returncode, err)
    return err


@pytest.mark.parametrize("args, message", [
    (["--positive", "clickbiat"], "--positive 'clickbiat' is not one of --labels ['no-clickbait', 'clickbait']"),
    (["--positive", "clickbait", "--prior", "25"],
     "error: --prior 25: must be more than 0 and less than 1 (a share: 0.25 for 25 %)"),
    (["--positive", "clickbait", "--prior", "0"], "error: --prior 0: must be more than 0 and less than 1"),
    (["--positive", "clickbait", "--prompt", ""], "error: --prompt: must not be empty"),
    (["--positive", "clickbait", "--weak-labels", "crowds"],
     "error: --weak-labels 'crowds': must be 'auto', 'none', 'crowd', 'scout' or 'gold'"),
    (["--positive", "clickbait", "--weak-labels", "crowd"],
     "error: --weak-labels 'crowd': student.weak_labels = \"crowd\" needs a crowd column: set task.crowd_field "
     "(--crowd-field)"),
])
def test_init_errors_name_the_option_typed(tmp_path, args, message):
    """An invalid option of `curate init` is named as typed, with the fix in its terms, not as a curate.toml field."""
    proc = run_cli("init", tmp_path / "p", "--pool", _own_pool(tmp_path), *OWN, *args)
    err = _one_line_error(proc)
    assert message in err and "curate.toml" not in err and "fix it in" not in err
    assert not (tmp_path / "p").exists()


@pytest.fixture(scope="module")
def own_project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("own")
    project = tmp / "p"
    run_cli("init", project, "--pool", _own_pool(tmp), *OWN, "--positive", "clickbait", "--gold-field", "label",
            check=True)
    return project


@pytest.mark.parametrize("args, message", [
    (["--strategy", "boundary"], "error: --strategy 'boundary': unknown query strategy 'boundary'; known: "
                                 "badge, boundary-margin, "),
    (["--oracle", "simulate"], "error: --oracle 'simulate': must be 'simulated' or 'web'"),
    (["--rounds", "-1"], "error: --rounds -1: must be at least 0"),
    (["--test-fraction", "20"],
     "error: --test-fraction 20: must be at least 0 and less than 1 (a share: 0.2 for 20 %)"),
    (["--expert-kappa", "2"], "error: --expert-kappa 2: must be more than 0 and at most 1"),
    (["--weak-labels", "crowd"], "error: --weak-labels 'crowd': student.weak_labels = \"crowd\" needs a crowd column"),
])
def test_run_errors_name_the_option_typed(own_project, args, message):
    """An invalid `curate run` option is named as typed, not as a field to fix in curate.toml; nothing changes."""
    before = (own_project / "curate.toml").read_text()
    err = _one_line_error(run_cli("run", own_project, *args, "--quiet"))
    assert err.startswith(message) and "curate.toml" not in err and "fix it in" not in err, err
    assert "a share" not in err or "fraction" in message  # the percentage hint only for shares
    assert (own_project / "curate.toml").read_text() == before


def test_simulated_oracle_without_gold_points_at_gold_field_and_web_oracle(tmp_path):
    project = tmp_path / "p"
    init = run_cli("init", project, "--pool", _own_pool(tmp_path, gold=False), *OWN, "--positive", "clickbait",
                   check=True)
    assert "--oracle web" in init.stdout and "--gold-field" in init.stdout
    err = _one_line_error(run_cli("run", project, "--quiet"))
    assert "--gold-field COLUMN" in err and "--oracle web" in err


def test_init_turns_the_crowd_weak_stage_on_where_the_pool_has_a_crowd_column(tmp_path):
    """`--weak-labels auto` (the default) is saved resolved: crowd with --crowd-field, none without; said on init."""
    rows = [{"id": f"t{k}", "text": f"headline number {k}", "votes": [LABELS[k % 2]] * 3} for k in range(12)]
    pool = _jsonl(tmp_path / "crowd.jsonl", rows)
    with_crowd = run_cli("init", tmp_path / "a", "--pool", pool, *OWN, "--positive", "clickbait",
                         "--crowd-field", "votes", check=True)
    assert 'weak_labels = "crowd"' in (tmp_path / "a" / "curate.toml").read_text()
    assert "weak stage: the student first learns one crowd judgment per item (column 'votes', priced at $0.10" \
        in with_crowd.stdout and "--weak-labels none turns it off" in with_crowd.stdout
    off = run_cli("init", tmp_path / "b", "--pool", pool, *OWN, "--positive", "clickbait", "--crowd-field", "votes",
                  "--weak-labels", "none", check=True)
    assert 'weak_labels = "none"' in (tmp_path / "b" / "curate.toml").read_text() and "weak stage" not in off.stdout
    run_cli("init", tmp_path / "c", "--pool", pool, *OWN, "--positive", "clickbait", check=True)
    assert 'weak_labels = "none"' in (tmp_path / "c" / "curate.toml").read_text()
