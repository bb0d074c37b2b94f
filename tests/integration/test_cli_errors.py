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
    assert neg.returncode == 2 and "loop.budget" in neg.stderr
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
    (["experiment", "label-efficiency", "--conditions", "magic", "--pool", "x.jsonl", "--labels", "a,b",
      "--positive", "b"], "--conditions: condition 'magic': unknown query strategy 'magic'"),
    (["experiment", "label-efficiency", "--conditions", "uncertainty+tea", "--project", "x"], "unknown weak source 'tea'"),
    (["experiment", "label-efficiency", "--student", "big"], "give --project EXISTING"),
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
