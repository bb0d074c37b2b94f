"""The command line: ``curate init``, ``curate run``, ``curate report``.

Errors a user can cause print one line (``error: ...``) on stderr and exit with status 2.
"""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from curate.config import TaskConfig, option_text, save_config, validate_config
from curate.errors import CurateError


def _hide_flag_placeholder() -> None:
    """Show on/off flags (``--quiet``, ``--llm``, ``--progress/--no-progress``, ``--help``) in ``--help`` without a
    value placeholder: recent typer versions print ``<bool>`` beside them, as if they took a value."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "curate_bare_flags", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.curate_bare_flags = True
    TyperOption.display_type_rich = display_type_rich


_hide_flag_placeholder()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="curate: make a text classifier agree with policy experts on as few expert labels as possible.",
)
err_console = Console(stderr=True)


def _friendly(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CurateError as exc:
            # The message is plain text (it may quote a file's content: no markup, no emoji codes) on one line.
            message = str(exc).replace("\r", "\\r").replace("\n", "\\n")
            err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _split_labels(labels: str) -> list[str]:
    """The labels of ``--labels A,B,...``, exactly as written between the commas.

    Raises:
        CurateError: fewer than two labels; an empty label (``a,,b``, a comma at either end); a label with
            spaces at its start or end (``a, b``); a label given twice; a control character or lone surrogate
            in a label. A label cannot contain a comma.
    """
    example = "e.g. --labels no,yes"
    parts = labels.split(",")
    if len(parts) < 2:
        raise CurateError(f"--labels {labels!r}: give at least two comma-separated labels, {example}")
    for k, part in enumerate(parts, start=1):
        if not part.strip():
            raise CurateError(f"--labels {labels!r}: label {k} of {len(parts)} is empty (two commas in a row, or a "
                              f"comma at the start or end); separate the labels by single commas, {example}")
        if part != part.strip():
            tidy = ",".join(p.strip() for p in parts)
            raise CurateError(f"--labels {labels!r}: label {part!r} has spaces at its start or end, which would "
                              f"be part of the label; write --labels {tidy!r} (a label cannot contain a comma)")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in part):
            raise CurateError(f"--labels {labels!r}: label {part!r} holds a control character or a lone "
                              f"surrogate; use visible characters, {example}")
    seen: set[str] = set()
    for part in parts:
        if part in seen:
            raise CurateError(f"--labels {labels!r}: label {part!r} is given twice; give each label once")
        seen.add(part)
    return parts


def _read_text_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CurateError(f"{path}: cannot read the {what}: {exc}") from None


WEAK_LABELS_HELP = ("Weak stage before the expert rounds (sequential SFT): auto (default: crowd where the project has "
                    "a crowd column, --crowd-field, otherwise none), none, crowd (one judgment of the crowd column per "
                    "item, priced in the report), scout (the scout's own predictions, free).")


@app.command()
@_friendly
def init(
    project: Path = typer.Argument(..., help="New project folder (must not exist or be empty)."),
    pool: Path = typer.Option(..., "--pool", help="Pool file: JSON Lines, CSV/TSV or Parquet."),
    labels: str = typer.Option(..., "--labels", help="Comma-separated labels, e.g. no-clickbait,clickbait."),
    positive: str = typer.Option(..., "--positive", help="The positive label (the policy's class)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="The policy: a plain-language definition of the positive class."),
    prompt_file: Optional[Path] = typer.Option(None, "--prompt-file", help="Read the policy prompt from a file."),
    text_field: str = typer.Option("text", "--text-field", help="Column holding the text."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Column holding ids (default: 'id' if present, else row numbers)."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Column of gold labels (for the simulated oracle and the test split)."),
    crowd_field: Optional[str] = typer.Option(None, "--crowd-field", help="Column of crowd judgments (e.g. Webis 'judgments')."),
    negative_description: Optional[str] = typer.Option(None, "--negative-description", help="What a benign item looks like (round-0 scout)."),
    seed_examples: Optional[Path] = typer.Option(None, "--seed-examples", help='JSON file of example texts per label, {"LABEL": ["example text", ...], ...}, written by the policy author, for the round-0 scout.'),
    prior: float = typer.Option(0.5, "--prior", help="Expected positive share, between 0 and 1 (e.g. 0.25 for 25 %), places the scout's threshold."),
    db: Optional[str] = typer.Option(None, "--db", help="Database URL, e.g. postgresql://user@host/db (default: SQLite in the project)."),
    llm: bool = typer.Option(False, "--llm", help="Use a causal LLM as scout (prompted, calibrated) and as student (LoRA); default the bundled SmolLM2-135M-Instruct."),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", help="With --llm: a local Hugging Face causal-LM folder instead of bundled:SmolLM2-135M-Instruct."),
    demonstrations: int = typer.Option(2, "--demonstrations", help="With --llm: seed examples per label shown to the prompted scout."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu (default), cuda or cuda:N for the scout and the student."),
    weak_labels: str = typer.Option("auto", "--weak-labels", help=WEAK_LABELS_HELP),
) -> None:
    """Create a project from a pool file. Columns other than the text are kept (gold, crowd judgments)."""
    config = _init_project(project, pool, labels=labels, positive=positive, prompt=prompt, prompt_file=prompt_file,
                           text_field=text_field, id_field=id_field, gold_field=gold_field, crowd_field=crowd_field,
                           negative_description=negative_description, seed_examples=seed_examples, prior=prior,
                           db=db, llm=llm, llm_model=llm_model, demonstrations=demonstrations, device=device,
                           weak_labels=weak_labels)
    from curate.project import Project

    n = len(Project.open(project).ids)
    typer.echo(f"created {project} with {n} items, labels {config.task.labels} (positive: {config.task.positive})")
    if config.student.weak_labels == "crowd" and weak_labels == "auto":
        typer.echo(f"weak stage: the student first learns one crowd judgment per item (column "
                   f"{config.task.crowd_field!r}, priced at ${config.cost.crowd_label:.2f} each in the report), then "
                   "the experts' labels; --weak-labels none turns it off")
    if config.task.gold_field is None:
        typer.echo(f"no gold column: run with people labelling (`curate run {project} --oracle web`), or name one "
                   "with --gold-field COLUMN for the simulated experts")


def _init_project(project: Path, pool: Path, *, labels: str, positive: str, prompt: str | None,
                  prompt_file: Path | None, text_field: str = "text", id_field: str | None = None,
                  gold_field: str | None = None, crowd_field: str | None = None,
                  negative_description: str | None = None, seed_examples: Path | None = None, prior: float = 0.5,
                  db: str | None = None, llm: bool = False, llm_model: str | None = None, demonstrations: int = 2,
                  device: str | None = None, weak_labels: str = "auto"):
    """What ``curate init`` does with its options (shared with ``curate experiment``)."""
    if (prompt is None) == (prompt_file is None):
        raise CurateError("give the policy prompt with exactly one of --prompt TEXT or --prompt-file FILE")
    from curate.validation import JSONProblem, loads_strict, text_fix, text_problem

    prompt_text = prompt if prompt is not None else _read_text_file(prompt_file, "policy prompt")
    for flag, value in (("--prompt" if prompt is not None else str(prompt_file), prompt_text),
                        ("--negative-description", negative_description)):
        problem = text_problem(value) if value else None
        if problem is not None:
            raise CurateError(f"{flag}: the text {problem}; {text_fix(value)}")
    scout: dict = {"prior": prior}
    if negative_description:
        scout["negative_description"] = negative_description
    if seed_examples is not None:
        try:
            scout["seed_examples"] = loads_strict(_read_text_file(seed_examples, "seed examples"))
        except json.JSONDecodeError as exc:
            raise CurateError(f"{seed_examples}: line {exc.lineno}: not valid JSON ({exc.msg}); expected {{label: [texts]}}") from None
        except JSONProblem as exc:
            raise CurateError(f"{seed_examples}: {exc.msg}; {exc.fix}") from None
    label_list = _split_labels(labels)
    if positive not in label_list:
        raise CurateError(f"--positive {positive!r} is not one of --labels {label_list}; give one of them")
    task_data = dict(labels=label_list, positive=positive, prompt=prompt_text, text_field=text_field,
                     id_field=id_field, gold_field=gold_field, crowd_field=crowd_field)
    typed = {("task", "labels"): option_text("--labels", labels), ("task", "positive"): option_text("--positive", positive),
             ("task", "prompt"): "--prompt" if prompt is not None else option_text("--prompt-file", prompt_file),
             ("scout", "prior"): option_text("--prior", prior),
             ("scout", "negative_description"): "--negative-description",
             ("scout", "seed_examples"): option_text("--seed-examples", seed_examples)}
    typed.update({("task", f"{name}_field"): option_text(f"--{name}-field", value) for name, value in
                  (("text", text_field), ("id", id_field), ("gold", gold_field), ("crowd", crowd_field))})
    typed[("student", "weak_labels")] = option_text("--weak-labels", weak_labels)
    # The options' own checks, before the pool is read: an invalid value is named by the option that gave it.
    task = validate_config({"task": task_data, "scout": scout, "student": {"weak_labels": weak_labels}},
                           "--labels/--positive/--prompt", typed).task
    from curate.project import init_project

    overrides: dict = {"scout": scout}
    if llm_model and not llm:
        raise CurateError("--llm-model needs --llm (it names the causal LM used as scout and student)")
    if llm:
        from curate.config import BUNDLED_LLM

        model = llm_model or BUNDLED_LLM
        scout.update(kind="prompted-lm", model=model,
                     demonstrations=demonstrations if scout.get("seed_examples") else 0)
        # LoRA needs a larger step than a full fine-tune: 5e-4 (benchmarks/results/llm_vs_minilm).
        overrides["student"] = {"model": model, "finetune": "lora", "learning_rate": 5e-4}
    if device:
        scout["device"] = device
        overrides.setdefault("student", {})["device"] = device
    if db:
        overrides["database"] = db
    if weak_labels != "auto":
        overrides.setdefault("student", {})["weak_labels"] = weak_labels
    return init_project(project, pool, task=TaskConfig.model_validate(task.model_dump()), overrides=overrides)


@app.command()
@_friendly
def run(
    project: Path = typer.Argument(..., help="Project folder made by `curate init`."),
    oracle: Optional[str] = typer.Option(None, "--oracle", help="Where labels come from: simulated (default; simulated experts answer from the gold column, --gold-field) or web (people label in `curate serve`, or their labels are brought in with `curate import`)."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Gold column the simulated experts answer from."),
    crowd_field: Optional[str] = typer.Option(None, "--crowd-field", help="Crowd judgments column."),
    rounds: Optional[int] = typer.Option(None, "--rounds", help="Maximum rounds (default 6)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Items sent to the experts per round (default 100)."),
    total_budget: Optional[int] = typer.Option(None, "--total-budget", help="Items over all rounds."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Query strategy: boundary-margin (default), uncertainty, badge, cluster-margin, typiclust, boundary-pairs, random, coreset."),
    cold_start: Optional[str] = typer.Option(None, "--cold-start", help="First-round strategy while nothing is labelled: typiclust (default), none, random, coreset."),
    weak_labels: Optional[str] = typer.Option(None, "--weak-labels", help=WEAK_LABELS_HELP),
    self_training: Optional[bool] = typer.Option(None, "--self-training/--no-self-training", help="Self-train the final model (fine-tuned student): the model trained on every expert label labels the pool, a new student learns those soft labels, then the expert labels. Free (no label bought); slower by one pass over up to 20,000 pool items."),
    final_recipe: Optional[str] = typer.Option(None, "--final-recipe", help="With a weak stage, how the final model uses the weak labels: sequential (default: start from the weak-stage model, then the expert labels) or mixed (one pass from the base weights over every weak label, the experts' votes replacing it on their items, each presented 4 times)."),
    student_kind: Optional[str] = typer.Option(None, "--student-kind", help="finetune (default: the transformer) or proxy (a head on the frozen embeddings, seconds per round)."),
    experts: Optional[int] = typer.Option(None, "--experts", help="Simulated experts per item (default 2)."),
    expert_kappa: Optional[float] = typer.Option(None, "--expert-kappa", help="Target expert-expert kappa (default 0.8)."),
    student: Optional[str] = typer.Option(None, "--student", help="Student model: a local HF checkpoint folder, bundled:all-MiniLM-L6-v2 or bundled:SmolLM2-135M-Instruct."),
    presentations: Optional[int] = typer.Option(None, "--presentations", help="Example presentations per fine-tune."),
    test_fraction: Optional[float] = typer.Option(None, "--test-fraction", help="Held-out share scored against gold (default 0.2)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Fixes every random choice of the run."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N for the scout and the student."),
    backend: Optional[str] = typer.Option(None, "--backend", help="What scores with the student: torch (default), onnx (ONNX Runtime, same scores) or onnx-int8 (int8, faster, scores move slightly)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the embedding and each round's scoring on a Ray cluster: HOST:PORT (what `ray start --head` prints), ray://HOST:PORT, auto (RAY_ADDRESS or a cluster started here, else a new local one), or off (one process again). Same results; see README \"Scale out\"."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress: no bars in a terminal, no progress lines in a log (those come every CURATE_PROGRESS_INTERVAL seconds, default 30)."),
) -> None:
    """Run the curation loop, or resume it at the first step not completed."""
    given = dict(locals())  # the options, by parameter name; which setting each overrides: curate.config.CLI_OPTIONS
    from curate.config import CLI_OPTIONS, load_config, option_text
    from curate.loop import Loop, check_settings
    from curate.project import Project

    data = load_config(project).model_dump(mode="json")
    typed: dict = {}  # setting -> the option that set it, as typed (an invalid value is named by its option)
    for option, keys in CLI_OPTIONS.items():
        value = given[option.removeprefix("--").replace("-", "_")]
        if value is not None:
            for section, key in keys:
                data[section][key] = value
                typed[(section, key)] = option_text(option, value)
    config = validate_config(data, str(project / "curate.toml"), typed)
    proj = Project(Path(project), config)
    check_settings(proj)
    loop = Loop(proj, progress=not quiet, log=typer.echo)  # validates gold labels before anything is written
    if config.runtime.ray_address:  # join the cluster first: a wrong address fails in one line, and is not saved
        from curate.distributed import connect

        connect(config.runtime, log=typer.echo)
    save_config(project, config)
    result = loop.run()
    if result.stop_reason is None:
        typer.echo(f"paused: waiting for the experts' labels (above: how many, and how to give them); run "
                   f"`curate run {project}` again once they are in.")
    else:
        typer.echo(f"done: {result.stop_reason}. Write the report with `curate report {project}`.")


@app.command()
@_friendly
def report(
    project: Path = typer.Argument(..., help="Project folder."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default PROJECT/report)."),
    compare: list[Path] = typer.Option([], "--compare", help="Other projects (same pool) drawn on the same kappa plot."),
) -> None:
    """Write report.md and PNG plots: kappa per round, ceiling, crowd, positive share, time per stage."""
    from curate.project import Project
    from curate.report import write_report

    path = write_report(Project.open(project), out, [Project.open(p) for p in compare])
    typer.echo(f"wrote {path}")


annotators_app = typer.Typer(no_args_is_help=True, help="The people who label: experts and admins.")
app.add_typer(annotators_app, name="annotators")


@annotators_app.command("add")
@_friendly
def annotators_add(
    project: Path = typer.Argument(..., help="Project folder."),
    name: str = typer.Argument(..., help="The annotator's name (unique)."),
    admin: bool = typer.Option(False, "--admin", help="May see progress, agreement, disagreements, adjudicate, export."),
    expires_in: Optional[int] = typer.Option(None, "--expires-in", help="The token is refused after this many days (default: never expires)."),
    expires: Optional[str] = typer.Option(None, "--expires", help="The token is refused from 00:00 UTC of this date, YYYY-MM-DD."),
) -> None:
    """Add an annotator and print their personal access token (only its hash is stored: keep it)."""
    from curate.project import Project
    from curate.web.auth import add_annotator, expiry_time

    expires_at = expiry_time(expires_in, expires)
    token = add_annotator(Project.open(project).store, name, admin=admin, expires_at=expires_at)
    typer.echo(token)


def _when(t: float | None, default: str) -> str:
    import datetime as dt

    if t is None:
        return default
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@annotators_app.command("list")
@_friendly
def annotators_list(project: Path = typer.Argument(..., help="Project folder.")) -> None:
    """List the annotators: name, role, created, expires, revoked (never a token or its hash)."""
    import time

    from curate.project import Project
    from curate.web.auth import list_annotators

    rows = list_annotators(Project.open(project).store)
    if not rows:
        typer.echo(f"no annotators yet; add one with `curate annotators add {project} NAME`")
        return
    now = time.time()
    table = [("name", "role", "created", "expires", "revoked")]
    for r in rows:
        expires = _when(r["expires_at"], "never")
        if r["expires_at"] is not None and r["expires_at"] <= now:
            expires += " (expired)"
        table.append((r["name"], "admin" if r["is_admin"] else "expert", _when(r["created_at"], "-"), expires,
                      _when(r["revoked_at"], "no")))
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@annotators_app.command("revoke")
@_friendly
def annotators_revoke(
    project: Path = typer.Argument(..., help="Project folder."),
    name: str = typer.Argument(..., help="The annotator whose token stops working."),
) -> None:
    """Revoke an annotator's token: refused from the next request on, even by a running server (labels stay)."""
    from curate.project import Project
    from curate.web.auth import revoke_annotator

    if revoke_annotator(Project.open(project).store, name):
        typer.echo(f"revoked the token of {name.strip()}; `curate annotators rotate {project} {name.strip()}` issues a new one")
    else:
        typer.echo(f"the token of {name.strip()} was already revoked")


@annotators_app.command("rotate")
@_friendly
def annotators_rotate(
    project: Path = typer.Argument(..., help="Project folder."),
    name: str = typer.Argument(..., help="The annotator who gets a new token."),
    expires_in: Optional[int] = typer.Option(None, "--expires-in", help="The new token is refused after this many days (default: never expires)."),
    expires: Optional[str] = typer.Option(None, "--expires", help="The new token is refused from 00:00 UTC of this date, YYYY-MM-DD."),
) -> None:
    """Print a new token for an annotator (shown once); the old one is refused from now on (a revoked annotator is
    re-admitted)."""
    from curate.project import Project
    from curate.web.auth import expiry_time, rotate_token

    expires_at = expiry_time(expires_in, expires)
    typer.echo(rotate_token(Project.open(project).store, name, expires_at=expires_at))


@app.command()
@_friendly
def serve(
    project: Path = typer.Argument(..., help="Project folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep 127.0.0.1 behind a reverse proxy)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help="A host name the app answers to besides 127.0.0.1 and localhost (repeatable; *.example.org for subdomains); other Host headers get 400."),
    max_failed_signins: int = typer.Option(10, "--max-failed-signins", help="Wrong tokens per client address per minute before 429 (0: no limit)."),
) -> None:
    """Serve the labelling app: experts label the current round's items; admins follow agreement."""
    from curate.project import Project
    from curate.web.app import check_serve_options, serve as serve_app

    check_serve_options(host, port, allowed_host, max_failed_signins)
    Project.open(project)  # a clear error before the server starts
    typer.echo(f"labelling app on http://{host}:{port}/ (stop with Ctrl-C)")
    serve_app(project, host, port, allowed_hosts=allowed_host, max_failed_signins=max_failed_signins)


@app.command("export")
@_friendly
def export_cmd(
    project: Path = typer.Argument(..., help="Project folder."),
    out: Path = typer.Option(..., "--out", help="File to write."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv, labelstudio (annotations) or labelstudio-tasks (a round's items to label)."),
    round_index: Optional[int] = typer.Option(None, "--round", help="For labelstudio-tasks: the round (default: the latest)."),
    labelstudio_url: Optional[str] = typer.Option(None, "--labelstudio-url", help="For labelstudio-tasks: also create a project for the round in the Label Studio at this address (the labelling config, as many annotators per task as each item needs labels) and import the tasks; its API token is read from LABEL_STUDIO_API_KEY."),
) -> None:
    """Export annotations and adjudications (JSON Lines, CSV, Label Studio JSON), or a round's items as Label Studio tasks."""
    import os

    from curate.annotations_io import (LABEL_STUDIO_TOKEN_ENV, LabelStudioAPI, export_annotations,
                                       export_tasks_labelstudio, labelstudio_label_config, labelstudio_overlap_note,
                                       round_label_needs)
    from curate.project import Project

    proj = Project.open(project)
    if fmt == "labelstudio-tasks":
        rounds = [r["round"] for r in proj.store.step_records() if r["step"] == "select"]
        if round_index is None and not rounds:
            raise CurateError(f"{project}: no round has been selected yet; run `curate run {project} --oracle web` first")
        t = max(rounds) if round_index is None else round_index
        api = LabelStudioAPI(labelstudio_url, os.environ.get(LABEL_STUDIO_TOKEN_ENV)) if labelstudio_url else None
        n = export_tasks_labelstudio(proj, t, out)
        config = out.with_suffix(".label_config.xml")
        config.write_text(labelstudio_label_config(proj.config.task.labels, prompt=proj.config.task.prompt), encoding="utf-8")
        typer.echo(f"wrote the Label Studio labelling config to {config}")
        if api is None:
            typer.echo(labelstudio_overlap_note(round_label_needs(proj, t)))
        else:
            made = api.create_round_project(proj, t)
            typer.echo(f"created Label Studio project {made['id']} with the round's {made['tasks']} tasks, "
                       f"{made['maximum_annotations']} annotators per task: {made['url']}")
    elif labelstudio_url:
        raise CurateError("--labelstudio-url goes with --format labelstudio-tasks (a round's items to label)")
    elif fmt in ("jsonl", "csv", "labelstudio"):
        n = export_annotations(proj.store, out, fmt, project=proj)
    else:
        raise CurateError(f"--format {fmt!r}: use jsonl, csv, labelstudio or labelstudio-tasks")
    typer.echo(f"wrote {n} records to {out}")


@app.command("import")
@_friendly
def import_cmd(
    project: Path = typer.Argument(..., help="Project folder."),
    file: Path = typer.Argument(..., help="JSON Lines, CSV (item_id, annotator, label) or a Label Studio JSON export."),
    round_index: int = typer.Option(..., "--round", help="The round for records that name none (a file's own round wins)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or labelstudio (default: from the suffix)."),
    register_annotators: bool = typer.Option(False, "--register-annotators", help="Register the file's annotators that are not registered yet (same name rules as `annotators add`; no sign-in token until `annotators rotate`). Default: refuse them."),
    on_excess: str = typer.Option("refuse", "--on-excess", help="Labels beyond an item's label need: refuse (default: nothing is imported) or keep-first (keep the stored and the file's first labels up to the need, drop the rest)."),
    labelstudio_url: Optional[str] = typer.Option(None, "--labelstudio-url", help="The Label Studio a Label Studio JSON export comes from: its users' e-mails name the annotators (its Export button writes user ids); the API token is read from LABEL_STUDIO_API_KEY."),
) -> None:
    """Import annotations under the labelling app's rules (registered annotators, the task's labels, pool items, the
    project's rounds, sane times, each item's label need); nothing is written if any line is bad; re-importing adds
    nothing."""
    import os

    from curate.annotations_io import LABEL_STUDIO_TOKEN_ENV, LabelStudioAPI, import_annotations
    from curate.project import Project

    proj = Project.open(project)
    users = LabelStudioAPI(labelstudio_url, os.environ.get(LABEL_STUDIO_TOKEN_ENV)).user_emails() if labelstudio_url else None
    result = import_annotations(proj, file, round_index=round_index, fmt=fmt, register_annotators=register_annotators,
                                on_excess=on_excess, labelstudio_users=users)
    message = (f"added {result['added']} annotations, {result['skipped_existing']} were already there, "
               f"{result['ignored']} ignored (adjudications, cancelled Label Studio annotations)")
    if result["over_need"]:
        message += f", {result['over_need']} dropped (their items already had the labels they need)"
    if result["registered"]:
        message += (f"; registered {len(result['registered'])} annotators without a sign-in token "
                    f"(`curate annotators rotate {project} NAME` gives one): {', '.join(result['registered'])}")
    typer.echo(message)


experiment_app = typer.Typer(no_args_is_help=True,
                              help="Reproducible experiments (results under benchmarks/results), each through the real loop "
                                   "on any pool: label efficiency; the cost sweep (expert against weak labels).")
app.add_typer(experiment_app, name="experiment")


def _csv(value: str, what: str) -> tuple[str, ...]:
    out = tuple(x.strip() for x in value.split(",") if x.strip())
    if not out:
        raise CurateError(f"{what} {value!r}: give a comma-separated list")
    return out


def _numbers(value: str, what: str, kind=int) -> tuple:
    try:
        return tuple(kind(x) for x in _csv(value, what))
    except ValueError:
        raise CurateError(f"{what} {value!r}: give comma-separated numbers, e.g. 100,200") from None


def _experiment_command() -> str:
    import shlex

    return "curate " + shlex.join(sys.argv[1:])


def _experiment_template(project: Optional[Path], work: Path, pool: Optional[Path], *, labels: Optional[str],
                         positive: Optional[str], **init) -> Path:
    """The template project of an experiment: ``project`` as given, or one made once by ``curate init`` from
    ``pool`` in ``work/template`` (``init``: the other `curate init` options).

    Raises:
        CurateError: neither or both of ``project`` and ``pool``, or ``pool`` without ``labels`` and ``positive``.
    """
    if project is not None:
        if pool is not None:
            raise CurateError("give either --project or --pool, not both")
        return project
    if pool is None or labels is None or positive is None:
        raise CurateError("give --project EXISTING, or --pool FILE --labels A,B --positive B --gold-field COLUMN "
                          "... as for `curate init`")
    template = work / "template"
    if not (template / "curate.toml").is_file():
        _init_project(template, pool, labels=labels, positive=positive, **init)
    return template


EXPERIMENT_PRECISION_HELP = (
    "auto (timed once per experiment and recorded with its embeddings), bf16 or fp32. fp32 repeats on another CPU; "
    "bf16 moved margin-based figures by up to 0.1 kappa between an Intel Xeon and an AMD EPYC. A --work folder keeps "
    "the precision its embeddings were made in.")


@experiment_app.command("label-efficiency")
@_friendly
def experiment_label_efficiency(
    out: Path = typer.Option(..., "--out", help="Results folder: results.json, results.md, learning_curves.png."),
    project: Optional[Path] = typer.Option(None, "--project", help="An existing project to take the pool and settings from (instead of --pool ...)."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Pool file, as for `curate init` (with --labels, --positive, --gold-field, ...)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="As for `curate init`."),
    positive: Optional[str] = typer.Option(None, "--positive", help="As for `curate init`."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="As for `curate init`."),
    prompt_file: Optional[Path] = typer.Option(None, "--prompt-file", help="As for `curate init`."),
    text_field: str = typer.Option("text", "--text-field", help="As for `curate init`."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="As for `curate init`."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Gold column: the simulated experts answer from it and the test split is scored on it."),
    crowd_field: Optional[str] = typer.Option(None, "--crowd-field", help="Crowd judgments (for +crowd and crowd-all)."),
    negative_description: Optional[str] = typer.Option(None, "--negative-description", help="As for `curate init`."),
    seed_examples: Optional[Path] = typer.Option(None, "--seed-examples", help="As for `curate init`."),
    prior: float = typer.Option(0.5, "--prior", help="Expected positive share (the scout's and the decision threshold's)."),
    conditions: str = typer.Option("default,uncertainty,random", "--conditions",
                                   help="Comma-separated: STRATEGY[@COLD][+crowd|+scout], default[+...], crowd-all, gold-all, scout-all."),
    student: str = typer.Option("proxy", "--student", help="proxy (frozen-embedding head, seconds) or finetune (the real fine-tuned student)."),
    seeds: int = typer.Option(5, "--seeds", min=1),
    budgets: str = typer.Option("100,200,300,400,500,600", "--budgets", help="Expert-labelled items to report, multiples of --round-size."),
    round_size: int = typer.Option(100, "--round-size", min=1),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the one test split every run shares."),
    expert_kappa: float = typer.Option(0.8, "--expert-kappa", help="Simulated experts' pairwise kappa."),
    work: Optional[Path] = typer.Option(None, "--work", help="Where the run projects live (default OUT/runs); rerunning resumes them."),
    keep_models: bool = typer.Option(False, "--keep-models", help="Keep every round's student (default: the final model only)."),
    reuse: bool = typer.Option(True, "--reuse/--no-reuse", help="Take runs already recorded in OUT/results.json with the same settings instead of running them again (so --seeds 5 after --seeds 3 runs two more seeds); a changed [selection] setting reruns only the conditions whose runs read it."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the results."),
    precision: str = typer.Option("auto", "--precision", help=EXPERIMENT_PRECISION_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Conditions (query strategies, cold starts, weak stages, all-label baselines) at equal expert budgets, run
    through the real loop on any pool, several seeds, one fixed test split; paired verdicts against uncertainty and
    random sampling."""
    from curate.experiments.label_efficiency import Condition, check_precision, run_label_efficiency

    check_precision(precision)
    try:  # check the conditions before anything is created
        for name in _csv(conditions, "--conditions"):
            Condition.parse(name)
    except ValueError as exc:
        raise CurateError(f"--conditions: {exc}") from None
    work = work or out / "runs"
    project = _experiment_template(project, work, pool, labels=labels, positive=positive, prompt=prompt,
                                   prompt_file=prompt_file, text_field=text_field, id_field=id_field,
                                   gold_field=gold_field, crowd_field=crowd_field,
                                   negative_description=negative_description, seed_examples=seed_examples, prior=prior)
    try:
        res = run_label_efficiency(
            project, out, conditions=_csv(conditions, "--conditions"), seeds=seeds,
            budgets=_numbers(budgets, "--budgets"), round_size=round_size, student=student, split_seed=split_seed,
            expert_kappa=expert_kappa, work=work, keep_models=keep_models, reuse=reuse, title=title,
            command=_experiment_command(), progress=progress, log=typer.echo, precision=precision)
    except ValueError as exc:
        raise CurateError(str(exc)) from None
    typer.echo(f"wrote {out}/results.json, results.md, learning_curves.png in {res['elapsed_s']:.0f} s")


@experiment_app.command("cost-sweep")
@_friendly
def experiment_cost_sweep(
    out: Path = typer.Option(..., "--out", help="Results folder: results.json, results.md, pareto_kappa.png, pareto_accuracy.png."),
    project: Optional[Path] = typer.Option(None, "--project", help="An existing project to take the pool and settings from (instead of --pool ...)."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="Pool file, as for `curate init` (with --labels, --positive, --gold-field, ...)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="As for `curate init`."),
    positive: Optional[str] = typer.Option(None, "--positive", help="As for `curate init`."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="As for `curate init`."),
    prompt_file: Optional[Path] = typer.Option(None, "--prompt-file", help="As for `curate init`."),
    text_field: str = typer.Option("text", "--text-field", help="As for `curate init`."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="As for `curate init`."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Gold column: the simulated experts answer from it and the test split is scored on it."),
    crowd_field: Optional[str] = typer.Option(None, "--crowd-field", help="Crowd judgments (the weak source crowd)."),
    negative_description: Optional[str] = typer.Option(None, "--negative-description", help="As for `curate init`."),
    seed_examples: Optional[Path] = typer.Option(None, "--seed-examples", help="As for `curate init`."),
    prior: float = typer.Option(0.5, "--prior", help="Expected positive share (the scout's and the decision threshold's)."),
    student: str = typer.Option("proxy", "--student", help="proxy (frozen-embedding head, seconds per run; default) or finetune (the real fine-tuned student)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", min=1, help="Default 3 (1 with --quick)."),
    budgets: Optional[str] = typer.Option(None, "--budgets", help="Dollars; an expert label costs $1 (default 16,64,256,1024,4096; 16,64 with --quick)."),
    shares: Optional[str] = typer.Option(None, "--shares", help="Weak shares of the budget (default 0,0.05,0.2,0.4,0.6,0.8,0.95,1; 0,0.5,1 with --quick)."),
    prices: Optional[str] = typer.Option(None, "--prices", help="Dollars per weak label (default 0.5,0.1,0.01; 0.1 with --quick)."),
    weak_sources: str = typer.Option("crowd,scout", "--weak-sources", help="crowd (one judgment of --crowd-field per item) and/or scout (the round-0 scout's predictions)."),
    methods: str = typer.Option(
        "expert-only,weak-only,sequential,sequential+uncertainty,sequential+boundary-pairs", "--methods",
        help="Comma-separated: expert-only, weak-only, sequential (random expert items), sequential+STRATEGY (e.g. sequential+uncertainty; sequential+STRATEGY@COLD adds a cold start), sequential+default (curate's default query strategy and cold start)."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the one test split every run shares."),
    expert_kappa: float = typer.Option(0.8, "--expert-kappa", help="Simulated experts' pairwise kappa."),
    bootstrap: int = typer.Option(200, "--bootstrap", min=10, help="Bootstrap resamples of the loop's kappa intervals."),
    work: Optional[Path] = typer.Option(None, "--work", help="Where the run projects live (default OUT/runs); a rerun takes every finished run from there."),
    keep_models: bool = typer.Option(False, "--keep-models", help="Keep every run's saved students (default: deleted once measured)."),
    quick: bool = typer.Option(False, "--quick", help="A small grid: one seed, budgets 16,64, shares 0,0.5,1, w = $0.10 (unless given)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title of the results."),
    precision: str = typer.Option("auto", "--precision", help=EXPERIMENT_PRECISION_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Expert labels ($1) against weak labels ($w) under one budget, every cell a run of the real loop on any pool:
    sequential SFT and its query-strategy variants, the Pareto frontier and the regime of each budget (Mallen and
    Belrose 2024)."""
    from curate.experiments.cost_sweep import BUDGETS, PRICES, QUICK, SHARES, check_grid, run_cost_sweep
    from curate.experiments.label_efficiency import check_precision

    check_precision(precision)
    def grid_option(value: Optional[str], flag: str, full: tuple, small: tuple, kind=float) -> tuple:
        if value is not None:
            return _numbers(value, flag, kind)
        return small if quick else full

    seeds = seeds if seeds is not None else (QUICK["seeds"] if quick else 3)
    try:  # check the grid before anything is created
        grid = check_grid(
            seeds=seeds, budgets=grid_option(budgets, "--budgets", BUDGETS, QUICK["budgets"]),
            shares=grid_option(shares, "--shares", SHARES, QUICK["shares"]),
            prices=grid_option(prices, "--prices", PRICES, QUICK["prices"]),
            weak_sources=_csv(weak_sources, "--weak-sources"), methods=_csv(methods, "--methods"), student=student)
    except ValueError as exc:
        raise CurateError(str(exc)) from None
    work = work or out / "runs"
    project = _experiment_template(project, work, pool, labels=labels, positive=positive, prompt=prompt,
                                   prompt_file=prompt_file, text_field=text_field, id_field=id_field,
                                   gold_field=gold_field, crowd_field=crowd_field,
                                   negative_description=negative_description, seed_examples=seed_examples, prior=prior)
    try:
        res = run_cost_sweep(
            project, out, seeds=seeds, budgets=grid["budgets"], shares=grid["shares"], prices=grid["prices"],
            weak_sources=grid["weak_sources"], methods=grid["methods"], student=student, split_seed=split_seed,
            expert_kappa=expert_kappa, bootstrap=bootstrap, work=work, keep_models=keep_models, quick=quick,
            title=title, command=_experiment_command(), progress=progress, log=typer.echo, precision=precision)
    except ValueError as exc:
        raise CurateError(str(exc)) from None
    typer.echo(f"wrote {out}/results.json, results.md, pareto_kappa.png, pareto_accuracy.png "
               f"in {res['elapsed_s']:.0f} s")


def main() -> None:
    """Entry point of the ``curate`` script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
