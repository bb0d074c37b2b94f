"""A project's settings (``curate.toml``) as typed models, validated once, at load.

Every open choice of the method (METHOD.md section 1, "Left open by the source") is a field
here, so a run's settings are written into the project and can be read back and compared.
Each field also declares, once, whether it may change mid-run and which ``curate run`` option
overrides it (``_setting``); the resume check (:func:`settings_change_error`, :data:`MUTABLE`) and
the command line (:data:`CLI_OPTIONS`) read those declarations.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer,
                      model_validator)

from curate.errors import CurateError
from curate.select import STRATEGIES, registered

CONFIG_NAME = "curate.toml"
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
BUNDLED_LLM = "bundled:SmolLM2-135M-Instruct"


def _setting(*, mutable: bool = False, cli: str | None = None) -> dict:
    """A field's ``json_schema_extra``, the one place a setting's life cycle is declared.

    Args:
        mutable: the setting may change between invocations of one run (``curate run`` on a started project);
            every other change is refused (:func:`settings_change_error`, :data:`MUTABLE`).
        cli: the ``curate run`` option that overrides the setting (:data:`CLI_OPTIONS`), e.g. ``"--rounds"``.
    """
    out: dict = {}
    if mutable:
        out["mutable"] = True
    if cli is not None:
        out["cli"] = cli
    return out


class _TableError(ValueError):
    """An invalid entry in a ``[selection.NAME]`` table: ``where`` is its dotted path below ``selection``."""

    def __init__(self, where: str, msg: str) -> None:
        super().__init__(f"{where}: {msg}")
        self.where, self.msg = where, msg


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskConfig(_Strict):
    """The classification task: labels, the positive class and the policy prompt."""

    labels: list[str] = Field(min_length=2)
    positive: str
    prompt: str = Field(min_length=1)
    source: str = ""  # the pool file the project was made from (for error messages)
    text_field: str = "text"
    id_field: str | None = None
    gold_field: str | None = Field(default=None, json_schema_extra=_setting(cli="--gold-field"))
    crowd_field: str | None = Field(default=None, json_schema_extra=_setting(cli="--crowd-field"))

    @model_validator(mode="after")
    def _check(self) -> "TaskConfig":
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct, got {self.labels}")
        if any(not lab.strip() for lab in self.labels):
            raise ValueError("labels must be non-empty strings")
        if self.positive not in self.labels:
            raise ValueError(f"positive label {self.positive!r} is not one of the labels {self.labels}")
        return self

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive)


class ScoutConfig(_Strict):
    """The round-0 scorer ("LLM-0"): labels the pool from the prompt alone.

    ``kind = "embedding"``: the cosine similarity of each text to a description of each label
    (the prompt for the positive class), calibrated without labels (see ``curate.models.scout``).
    ``kind = "prompted-lm"``: a local causal LM reads the policy prompt, ``demonstrations`` examples per
    label (from ``seed_examples``) and the item; the score is the difference of the label verbalizers'
    log-probabilities at the answer position, with contextual calibration (``curate.models.prompted_lm``).
    ``kind = "endpoint"``: the same prompt sent to an OpenAI-compatible server (vLLM, llama.cpp's server,
    Ollama), scored from the returned top log-probabilities (``curate.models.endpoint``).
    """

    kind: Literal["embedding", "prompted-lm", "endpoint"] = "embedding"
    negative_description: str | None = None
    prior: float = Field(default=0.5, gt=0.0, lt=1.0)
    seed_examples: dict[str, list[str]] = Field(default_factory=dict)
    # prompted-lm and endpoint
    model: str = BUNDLED_LLM  # a local causal-LM folder, or the bundled SmolLM2 (endpoint: the served model name)
    template: str | None = None  # placeholders {prompt} {demonstrations} {text}; None: the model's chat template
    verbalizers: dict[str, str] = Field(default_factory=dict)  # label -> answer text; default: the label itself
    demonstrations: int = Field(default=0, ge=0)  # k seed examples per label shown in the prompt
    calibrate: bool = True  # contextual calibration: subtract the score of content-free inputs
    content_free: list[str] = Field(default_factory=lambda: ["N/A", "", "[MASK]"])
    batch_size: int = Field(default=16, ge=1)
    max_length: int = Field(default=128, ge=8, le=32768)  # tokens of one item's text
    device: str = Field(default="cpu", json_schema_extra=_setting(mutable=True, cli="--device"))  # "cuda", "cuda:1"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    # e.g. http://127.0.0.1:8080/v1
    endpoint_url: str | None = Field(default=None, json_schema_extra=_setting(mutable=True))
    # name of the environment variable holding the endpoint's API key
    api_key_env: str | None = Field(default=None, json_schema_extra=_setting(mutable=True))
    top_logprobs: int = Field(default=20, ge=1, le=20)
    concurrency: int = Field(default=4, ge=1, json_schema_extra=_setting(mutable=True))
    timeout_s: float = Field(default=60.0, gt=0, json_schema_extra=_setting(mutable=True))


class StudentConfig(_Strict):
    """The trainable classifier: a transformers sequence-classification model, fully fine-tuned."""

    model: str = Field(default=BUNDLED_MODEL, json_schema_extra=_setting(cli="--student"))
    max_length: int = Field(default=64, ge=8, le=4096)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    # Small labelled sets need many passes (METHOD.md section 4): train for at least this many
    # example presentations, and at least ``min_epochs`` epochs, at most ``max_epochs``.
    presentations: int = Field(default=4000, ge=1, json_schema_extra=_setting(cli="--presentations"))
    min_epochs: int = Field(default=3, ge=1)
    max_epochs: int = Field(default=40, ge=1)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    from_base: bool = True  # retrain from the base weights each round (else continue from the last model)
    threads: int | None = Field(default=None, json_schema_extra=_setting(mutable=True))
    # Causal LMs (e.g. bundled:SmolLM2-135M-Instruct, Llama/Qwen/Gemma folders) get a last-token
    # classification head; ``finetune = "lora"`` trains LoRA adapters (peft) plus the head instead of all weights.
    finetune: Literal["full", "lora"] = "full"
    lora_rank: int = Field(default=8, ge=1)
    lora_alpha: float = Field(default=16.0, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: list[str] | None = None  # None: every linear projection ("all-linear")
    device: str = Field(default="cpu", json_schema_extra=_setting(mutable=True, cli="--device"))  # "cuda", "cuda:1"
    # ``kind = "proxy"``: a logistic-regression head on the frozen pool embeddings instead of a fine-tuned model
    # (seconds per round; for wide sweeps and as a cheap first look). ``proxy_c`` is its inverse L2 strength.
    kind: Literal["finetune", "proxy"] = Field(default="finetune", json_schema_extra=_setting(cli="--student-kind"))
    proxy_c: float = Field(default=1.0, gt=0)
    # After a weak stage, each expert item's weight in the proxy's refit on the weak rows plus the expert rows, as
    # the mixed final recipe presents each expert item ``loop.final_expert_weight`` (4) times. 0: all expert items
    # together weigh as much as all weak rows (the rule before this setting, kept for curate.toml files written
    # before it: LEGACY_DEFAULTS), which let 100 boundary items outweigh 15,567 crowd labels (proxy, Webis, crowd then
    # 100-600 curated labels, 5 seeds, fp32: 0.39-0.45 against 0.466 for the crowd alone; at 4 the curated rounds hold
    # the crowd's level, 0.466-0.469, as the fine-tuned student's sequential stage does).
    proxy_expert_weight: float = Field(default=4.0, ge=0)
    # Sequential SFT (Mallen & Belrose 2024, METHOD.md section 2): a weak stage on a weak label for every pool item
    # (the crowd column, or the round-0 scout's own predictions, free) trains the round-0 model once; every round's
    # expert fine-tune starts from it with a fresh optimizer. ``weak_presentations`` None: one pass over the pool.
    # ``gold`` (the gold column) is for benchmarks: the all-gold ceiling. ``auto`` (the default) is resolved when the
    # project's settings are validated, and saved resolved: ``crowd`` where the task has a crowd column
    # (``task.crowd_field``), otherwise ``none`` (measured: Webis, fine-tuned, 3 seeds, crowd then curated is above
    # expert labels alone by +0.06 to +0.16 kappa at 100 to 600 labels; the scout's predictions as weak labels are
    # below margin sampling on expert labels alone from 300 labels on (proxy, Webis, fp32), so a pool without a crowd
    # column gets no weak stage).
    weak_labels: Literal["auto", "none", "crowd", "scout", "gold"] = Field(
        default="auto", json_schema_extra=_setting(cli="--weak-labels"))
    weak_presentations: int | None = Field(default=None, ge=1)
    # Weak labels bought for the weak stage: a random subset of this many pool items (``loop.seed``; None: every
    # item with a weak label). The cost sweep (curate.experiments.cost_sweep) buys floor(s B / w) of them.
    weak_items: int | None = Field(default=None, ge=1)
    # The expert stage's learning rate when it starts from the weak-stage model: the full ``learning_rate`` (5e-5)
    # overwrote what the weak stage learnt (Webis, crowd -> 600 expert labels: kappa 0.538 against 0.580 for the
    # crowd model alone; at 1e-5: 0.581).
    after_weak_learning_rate: float = Field(default=1e-5, gt=0)
    # What scores with the fine-tuned student (curate.models.onnx_backend): "torch" (the model, in ``precision``),
    # "onnx" (ONNX Runtime, fp32: the same scores up to rounding) or "onnx-int8" (ONNX Runtime with dynamic int8
    # quantization: faster, scores move by up to a few hundredths). CPU only; exported once per saved model.
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(default="torch",
                                                          json_schema_extra=_setting(mutable=True, cli="--backend"))


class SelectionConfig(_Strict):
    """The query strategy, the cold start, and each registered strategy's settings in its own table.

    ``curate.toml`` spells a strategy's settings as ``[selection.NAME]`` (``[selection.boundary-margin]``,
    ``[selection.typiclust]``, ...), validated by the model the strategy registers (``curate.select.STRATEGIES``);
    a table left out takes its model's defaults. The flat form of earlier versions (``clusters = 50`` directly under
    ``[selection]``) still loads: each flat key moves into the table of every strategy that declares it.
    """

    strategy: str = Field(default="boundary-margin", json_schema_extra=_setting(cli="--strategy"))
    # The query strategy of the first round, when no item has an expert label yet ("none": ``strategy`` itself).
    cold_start: Literal["none", "typiclust", "random", "coreset"] = Field(
        default="typiclust", json_schema_extra=_setting(cli="--cold-start"))
    # The cold start's share of the first round; ``strategy`` chooses the rest on the round-0 model's scores. Half
    # and half hedges between a weak scout (typical, diverse items teach more: Hacohen et al. 2022) and a good one
    # (its boundary items teach more), which cannot be told apart before any expert label. Measured (proxy student,
    # fp32, 5 seeds, expert labels alone; benchmarks/results/label_efficiency): at 0.5 the default is never below
    # margin sampling on Webis, Webis rare or Chakraborty 5 % (above at 100 on Webis and Chakraborty); at 1 (the
    # earlier default, LEGACY_DEFAULTS) it was below at 200 on Chakraborty (-0.032), where the scout is already good.
    cold_start_share: float = Field(default=0.5, gt=0, le=1)
    # The embedding that defines regions, the same in every round (also the scout's).
    embedding_model: str = BUNDLED_MODEL
    # What computes those embeddings (once per project): "torch", "onnx" or "onnx-int8", as ``student.backend``.
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    # strategy name -> its settings (a ``curate.select.StrategySettings``); written as ``[selection.NAME]`` tables
    tables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        registered(name)  # ValueError: unknown, listing the known names
        return name

    @model_validator(mode="before")
    @classmethod
    def _gather_tables(cls, data: Any) -> Any:
        """Move ``[selection.NAME]`` tables, and the flat keys of earlier versions, into ``tables``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given_tables = dict(data.pop("tables", None) or {})
        tables = {name: dict(t) if isinstance(t, dict) else t for name, t in given_tables.items()}
        for name in list(data):
            if name in STRATEGIES:
                given = data.pop(name)
                tables[name] = {**given, **tables.get(name, {})} if isinstance(given, dict) else given
        for key in [k for k in data if k not in cls.model_fields]:
            owners = [name for name, reg in STRATEGIES.items() if key in reg.settings.model_fields]
            if owners:  # a flat key of earlier versions; an explicit table entry wins
                value = data.pop(key)
                for name in owners:
                    if isinstance(tables.setdefault(name, {}), dict):
                        tables[name].setdefault(key, value)
        data["tables"] = tables
        return data

    @field_validator("tables", mode="after")
    @classmethod
    def _validate_tables(cls, tables: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name in sorted(set(STRATEGIES) | set(tables)):
            if name not in STRATEGIES:
                raise _TableError(name, f"not a query strategy (known: {', '.join(sorted(STRATEGIES))})")
            model = STRATEGIES[name].settings
            given = tables.get(name, {})
            if isinstance(given, model):
                out[name] = given
                continue
            if isinstance(given, BaseModel):
                given = given.model_dump()
            try:
                out[name] = model.model_validate(given)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise _TableError(".".join([name, *(str(p) for p in first["loc"])]), first["msg"]) from None
        return out

    @model_serializer(mode="wrap")
    def _tables_inline(self, handler: Any) -> dict:
        out = handler(self)
        tables = out.pop("tables", {}) or {}
        out.update({name: values for name, values in tables.items() if values})
        return out

    def settings(self, name: str) -> BaseModel:
        """The settings of the strategy ``name`` (its ``[selection.NAME]`` table; the defaults when absent).

        Raises:
            ValueError: an unknown strategy (the message lists the known ones).
        """
        model = registered(name).settings
        found = self.tables.get(name)
        return found if isinstance(found, model) else model.model_validate(found or {})

    def params(self, name: str) -> dict[str, Any]:
        """The keyword parameters of the strategy ``name``: its settings as a dict (``make_strategy(name, **...)``)."""
        return self.settings(name).model_dump()


class OracleConfig(_Strict):
    """Where labels come from: ``simulated`` experts answer from the gold column; ``web``: people label in
    ``curate serve``. ``ceiling_share`` of each round's groups get ``experts_per_item`` independent labels
    (they measure the expert-expert ceiling); the rest get one."""

    kind: Literal["simulated", "web"] = Field(default="simulated", json_schema_extra=_setting(mutable=True,
                                                                                          cli="--oracle"))
    experts_per_item: int = Field(default=2, ge=1, json_schema_extra=_setting(cli="--experts"))
    ceiling_share: float = Field(default=1.0, ge=0, le=1)
    # web: an unanswered assignment is handed out again
    assignment_timeout_s: float = Field(default=1800.0, gt=0, json_schema_extra=_setting(mutable=True))
    expert_kappa: float = Field(default=0.8, gt=0, le=1, json_schema_extra=_setting(cli="--expert-kappa"))
    # simulated labelling time, to rehearse a run's pacing
    seconds_per_label: float = Field(default=0.0, ge=0, json_schema_extra=_setting(mutable=True))


class LoopConfig(_Strict):
    """Rounds, budget, splits and the stopping rule (the rules themselves: :mod:`curate.stopping`)."""

    # 0: score and evaluate the round-0 model only
    rounds: int = Field(default=6, ge=0, json_schema_extra=_setting(mutable=True, cli="--rounds"))
    budget: int = Field(default=100, ge=1, json_schema_extra=_setting(cli="--budget"))  # items per round
    # items over all rounds
    total_budget: int | None = Field(default=None, ge=1, json_schema_extra=_setting(mutable=True, cli="--total-budget"))
    eval_fraction: float = Field(default=0.4, ge=0, lt=1)
    test_fraction: float = Field(default=0.2, ge=0, lt=1, json_schema_extra=_setting(cli="--test-fraction"))
    # The decision threshold (kappa depends on it): "fixed" uses ``threshold``; "prior" the quantile of the pool's
    # scores that predicts ``scout.prior`` (the expected positive share) of the pool positive.
    threshold_rule: Literal["fixed", "prior"] = "prior"
    threshold: float = Field(default=0.5, gt=0, lt=1)
    # Never hand back a worse model: a round serves an earlier model (the round-0 model included) instead of its new
    # student when the earlier one agrees with the experts better on the current evaluation set with paired-bootstrap
    # probability >= keep_best_confidence (0: on the point estimate alone), or when the student predicts one class.
    keep_best: bool = True
    keep_best_confidence: float = Field(default=0.9, ge=0, lt=1)
    patience: int = Field(default=3, ge=1, json_schema_extra=_setting(mutable=True))
    min_delta: float = Field(default=0.0, ge=0, json_schema_extra=_setting(mutable=True))
    stop_at_ceiling: bool = True  # stop once model-expert kappa reaches the experts' own (off in experiments)
    # Label-free stop (stabilising predictions, Bloodgood & Vijay-Shanker 2009): stop once Cohen's kappa between
    # successive rounds' predicted labels on the pool averages >= stable_kappa over the last stable_window rounds.
    stop_when_stable: bool = Field(default=False, json_schema_extra=_setting(mutable=True))
    stable_kappa: float = Field(default=0.99, gt=0, le=1, json_schema_extra=_setting(mutable=True))
    stable_window: int = Field(default=3, ge=1, json_schema_extra=_setting(mutable=True))
    bootstrap: int = Field(default=1000, ge=10, json_schema_extra=_setting(mutable=True))
    seed: int = Field(default=0, json_schema_extra=_setting(cli="--seed"))
    split_seed: int | None = None  # the test split's seed (None: ``seed``); fixed across seeds in experiments
    # Once the loop stops, train a final model on every expert label (evaluation share included) and estimate its
    # kappa by ``final_cv_folds``-fold cross-validation over the labelled items (None: 5 without a gold test
    # split, 0 with one; the test split scores it either way).
    final_model: bool = Field(default=True, json_schema_extra=_setting(mutable=True))
    final_cv_folds: int | None = Field(default=None, ge=0, json_schema_extra=_setting(mutable=True))
    # Self-training of the final model (fine-tuned students only; Du et al. 2021, "Self-training Improves
    # Pre-training for Natural Language Understanding"; Furlanello et al. 2018, "Born-Again Neural Networks"): the
    # final model trained on the expert labels (the teacher) labels up to ``self_training_items`` pool items (soft
    # probabilities, the experts' votes where they labelled); a new student learns those in one pass from the base
    # weights, then the expert labels at ``student.after_weak_learning_rate`` (sequential SFT). Free: no label is
    # bought. The teacher's figures are kept beside the self-trained model's.
    final_self_training: bool = Field(default=False, json_schema_extra=_setting(mutable=True,
                                                                                 cli="--self-training"))
    self_training_items: int = Field(default=20000, ge=1, json_schema_extra=_setting(mutable=True))
    # How the final model uses a weak stage's labels (``student.weak_labels``): "sequential" starts from the
    # weak-stage model and fine-tunes on the expert labels at ``student.after_weak_learning_rate`` (sequential SFT,
    # Mallen & Belrose 2024); "mixed" trains once from the base weights on one set: every weak label, the experts'
    # votes replacing it on the items they labelled, each expert item presented ``final_expert_weight`` times.
    final_recipe: Literal["sequential", "mixed"] = Field(default="sequential",
                                                         json_schema_extra=_setting(mutable=True,
                                                                                    cli="--final-recipe"))
    final_expert_weight: int = Field(default=4, ge=1, json_schema_extra=_setting(mutable=True))


class CostConfig(_Strict):
    """Dollars per label, for the report's cost lines (Mallen & Belrose 2024 price weak labels at $0.10 and
    expert labels at $1)."""

    expert_label: float = Field(default=1.0, ge=0, json_schema_extra=_setting(mutable=True))
    crowd_label: float = Field(default=0.10, ge=0, json_schema_extra=_setting(mutable=True))
    scout_label: float = Field(default=0.0, ge=0, json_schema_extra=_setting(mutable=True))


class RuntimeConfig(_Strict):
    """Where the passes over every pool item run (:mod:`curate.distributed`). ``ray_address`` None: in this process;
    ``HOST:PORT`` (what ``ray start --head`` prints) or ``ray://HOST:PORT``: the embedding pass and each round's
    scoring of a fine-tuned student run as Ray Data on that cluster; ``auto``: the cluster in ``RAY_ADDRESS`` or
    started by ``ray start`` on this machine, else a new local one; ``off``: back to None. The results are the same
    files either way."""

    ray_address: str | None = Field(default=None, json_schema_extra=_setting(mutable=True, cli="--ray"))
    ray_batch_size: int = Field(default=256, ge=1, json_schema_extra=_setting(mutable=True))  # texts per actor call
    # actors per pass (None: one per ``ray_cpus_per_actor`` CPUs of the cluster; a GPU student: one per GPU)
    ray_actors: int | None = Field(default=None, ge=1, json_schema_extra=_setting(mutable=True))
    ray_cpus_per_actor: int = Field(default=1, ge=1, json_schema_extra=_setting(mutable=True))  # its torch threads

    @field_validator("ray_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        import re

        if value is not None and value.strip().lower() in ("", "off", "none"):  # back to one process
            return None
        if value is None or value == "auto" or re.fullmatch(r"(ray://)?[A-Za-z0-9_.\-]+:\d{1,5}", value):
            return value
        raise ValueError("must be auto, HOST:PORT (what `ray start --head` prints, e.g. 127.0.0.1:6379) or "
                         "ray://HOST:PORT")


class ProjectConfig(_Strict):
    """The whole ``curate.toml``. ``database``: a SQLAlchemy URL (e.g. ``postgresql+psycopg://...``) for a
    team's shared database, one database per project; None keeps SQLite in ``PROJECT/curate.db``."""

    database: str | None = None
    task: TaskConfig
    scout: ScoutConfig = Field(default_factory=ScoutConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @model_validator(mode="after")
    def _check(self) -> "ProjectConfig":
        unknown = set(self.scout.seed_examples) - set(self.task.labels)
        if unknown:
            raise ValueError(f"scout.seed_examples has labels {sorted(unknown)} not in task.labels {self.task.labels}")
        if self.student.weak_labels == "auto":
            self.student.weak_labels = "crowd" if self.task.crowd_field else "none"
        if self.student.weak_labels == "crowd" and not self.task.crowd_field:
            raise ValueError("student.weak_labels = \"crowd\" needs a crowd column: set task.crowd_field (--crowd-field)")
        if self.student.weak_labels == "gold" and not self.task.gold_field:
            raise ValueError("student.weak_labels = \"gold\" needs a gold column: set task.gold_field (--gold-field)")
        return self


SettingKey = tuple[str, str]
"""``(section, field)`` of a setting, e.g. ``("loop", "rounds")``; ``(name, "")`` for a top-level one (``database``)."""


def _declared() -> list[tuple[SettingKey, dict]]:
    """Every setting of :class:`ProjectConfig` with its :func:`_setting` declaration, in declaration order."""
    out: list[tuple[SettingKey, dict]] = []
    for section, field in ProjectConfig.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            out += [((section, name), dict(f.json_schema_extra or {})) for name, f in model.model_fields.items()]
        else:
            out.append(((section, ""), dict(field.json_schema_extra or {})))
    return out


MUTABLE: frozenset[SettingKey] = frozenset(key for key, extra in _declared() if extra.get("mutable"))
"""The settings that may change between invocations of one run (declared with ``_setting(mutable=True)``)."""



def _cli_options() -> dict[str, tuple[SettingKey, ...]]:
    out: dict[str, tuple[SettingKey, ...]] = {}
    for key, extra in _declared():
        if "cli" in extra:
            out[extra["cli"]] = out.get(extra["cli"], ()) + (key,)
    return out


CLI_OPTIONS: dict[str, tuple[SettingKey, ...]] = _cli_options()
"""``curate run``'s options that override settings, in declaration order (declared with ``_setting(cli=...)``):
``{"--rounds": (("loop", "rounds"),), ..., "--device": (("scout", "device"), ("student", "device"))}``. The option
``--name-part`` is the command's parameter ``name_part``."""


def setting_name(key: SettingKey) -> str:
    """The dotted name of a setting as ``curate.toml`` spells it: ``loop.rounds``; ``database``."""
    return f"{key[0]}.{key[1]}" if key[1] else key[0]


def flatten_settings(config: ProjectConfig) -> dict[SettingKey, object]:
    """``{(section, field): value}`` of every setting (JSON values, as ``curate.toml`` and the database hold them); a
    strategy's setting is ``("selection", "NAME.field")``. Settings of either form (the flat ``[selection]`` of earlier
    versions or the tables) give the same dict, as both validate to the same :class:`SelectionConfig`."""
    out: dict[SettingKey, object] = {}
    for section, values in config.model_dump(mode="json").items():
        if isinstance(values, dict):
            for k, v in values.items():
                if section == "selection" and k in STRATEGIES and isinstance(v, dict):  # [selection.NAME] tables
                    out.update({(section, f"{k}.{sub}"): x for sub, x in v.items()})
                else:
                    out[(section, k)] = v
        else:  # a top-level setting such as ``database``
            out[(section, "")] = values
    return out


def settings_change_error(old: ProjectConfig, new: ProjectConfig) -> str | None:
    """Why a run that started with ``old`` settings cannot go on with ``new`` ones, or None when it can.

    Only the settings in :data:`MUTABLE` may differ; the message names the first other changed setting (in sorted
    order), its old and new value, and lists every mutable setting.
    """
    a, b = flatten_settings(old), flatten_settings(new)
    for key in sorted(set(a) | set(b)):
        if key not in MUTABLE and a.get(key) != b.get(key):
            allowed = ", ".join(setting_name(k) for k, _ in _declared() if k in MUTABLE)
            return (f"this run started with {setting_name(key)}={a.get(key)!r}, now {b.get(key)!r}; only {allowed} "
                    "may change mid-run (start a new project to change it)")
    return None


def option_text(flag: str, value: object) -> str:
    """A command-line option as the user typed it, to head an error message: ``--prior 25``, ``--oracle 'simulate'``
    (numbers as written, text quoted, a file by its path)."""
    if isinstance(value, bool) or value is None:
        return flag
    if isinstance(value, float):
        return f"{flag} {int(value) if value.is_integer() else value!r}"
    if isinstance(value, int):
        return f"{flag} {value}"
    return f"{flag} {str(value)!r}"


def _field(key: SettingKey):
    """The pydantic ``FieldInfo`` of a setting, or None."""
    section = ProjectConfig.model_fields.get(key[0])
    model = section.annotation if section is not None else None
    if key[1] and isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_fields.get(key[1])
    return section if not key[1] else None


def _range_text(key: SettingKey) -> str | None:
    """The allowed range of a numeric setting in words (``more than 0 and less than 1``), or None without bounds."""
    field = _field(key)
    lower = upper = None
    for m in getattr(field, "metadata", ()):
        if getattr(m, "gt", None) is not None:
            lower = f"more than {m.gt:g}"
        elif getattr(m, "ge", None) is not None:
            lower = f"at least {m.ge:g}"
        if getattr(m, "lt", None) is not None:
            upper = f"less than {m.lt:g}"
        elif getattr(m, "le", None) is not None:
            upper = f"at most {m.le:g}"
    if lower and upper:
        return f"{lower} and {upper}"
    return lower or upper


def _option_error(key: SettingKey, typed: str, first: dict) -> str:
    """The message for an invalid value given by a command-line option: the option as typed and the fix in its terms
    (``--prior 25: must be more than 0 and less than 1 (a share: 0.25 for 25 %)``)."""
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        msg = f"must be {_range_text(key) or msg.removeprefix('Input should be ')}"
        value = first.get("input")
        is_share = key[1] == "prior" or key[1].endswith(("_fraction", "_share"))
        if is_share and isinstance(value, (int, float)) and 1 < value <= 100:  # a percentage given for a share
            msg += f" (a share: {value / 100:g} for {value:g} %)"
    elif first["type"] == "string_too_short":
        msg = "must not be empty"
    elif msg.startswith("Input should be "):
        msg = f"must be {msg.removeprefix('Input should be ')}"
    return f"{typed}: {msg}"


def _format_validation_error(path: Path, err: ValidationError, options: dict[SettingKey, str] | None = None) -> str:
    first = err.errors()[0]
    loc = tuple(str(p) for p in first["loc"])
    where = ".".join(loc) or "(top level)"
    table_error = (first.get("ctx") or {}).get("error")
    if isinstance(table_error, _TableError):  # a [selection.NAME] entry: name it, not just the tables field
        where = f"{where.removesuffix('.tables')}.{table_error.where}"
        first = {**first, "msg": table_error.msg}
    # A value given on the command line is fixed in that option, named as the user typed it.
    options = options or {}
    key = (loc[0], loc[1] if len(loc) > 1 else "") if loc else None
    if key in options:
        return _option_error(key, options[key], first)
    if not loc:  # a rule across settings: name the option that set the setting the message names first
        named = sorted((first["msg"].find(setting_name(k)), typed) for k, typed in options.items()
                       if setting_name(k) in first["msg"])
        if named:
            return f"{named[0][1]}: {first['msg'].removeprefix('Value error, ')}"
    # A settings file is fixed in that file; command-line options (``--labels/--positive``) in those options.
    fix = str(path) if str(path).startswith("--") else path.name
    return f"{path}: field {where}: {first['msg']} (fix it in {fix})"


LEGACY_DEFAULTS: dict[SettingKey, Any] = {("student", "proxy_expert_weight"): 0.0,
                                            ("selection", "cold_start_share"): 1.0}
"""Settings added after projects existed, each with the value that does what such a project did: a ``curate.toml``
(or a results file's recorded configuration) written before a setting existed lacks its key and gets this value, so
a resumed run or a reused result goes on as it began."""


def with_legacy_defaults(raw: dict) -> dict:
    """``raw`` settings (as ``curate.toml`` holds them) with every :data:`LEGACY_DEFAULTS` key its section lacks."""
    out = dict(raw)
    for (section, key), value in LEGACY_DEFAULTS.items():
        if isinstance(out.get(section), dict) and key not in out[section]:
            out[section] = {**out[section], key: value}
    return out


def load_config(project: Path) -> ProjectConfig:
    """Read and validate ``PROJECT/curate.toml``.

    Raises:
        CurateError: the file is missing, is not valid TOML, or a field is invalid; the message
            names the file and the field.
    """
    path = Path(project) / CONFIG_NAME
    if not path.is_file():
        raise CurateError(f"{path}: not found; create the project first with `curate init {project} --pool FILE ...`")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CurateError(f"{path}: not valid TOML: {exc}") from None
    try:
        return ProjectConfig.model_validate(with_legacy_defaults(raw))
    except ValidationError as exc:
        raise CurateError(_format_validation_error(path, exc)) from None


def validate_config(data: dict, where: str, options: dict[SettingKey, str] | None = None) -> ProjectConfig:
    """Validate a settings dict (for example after applying CLI overrides).

    Args:
        data: the settings, as ``curate.toml`` holds them.
        where: where the settings come from, named in an error (``PROJECT/curate.toml``).
        options: the settings given by command-line options, each with the option as the user typed it
            (:func:`option_text`), e.g. ``{("scout", "prior"): "--prior 25"}``.

    Raises:
        CurateError: an invalid setting; one given by an option is named by that option and its value
            (``--prior 25: must be more than 0 and less than 1 ...``), any other by ``where`` and the field.
    """
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise CurateError(_format_validation_error(Path(where), exc, options)) from None


def config_to_toml(config: ProjectConfig) -> str:
    """The settings as TOML text (``None`` fields are left out, as TOML has no null)."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))


def save_config(project: Path, config: ProjectConfig) -> None:
    """Write ``PROJECT/curate.toml`` atomically (a temporary file renamed into place)."""
    path = Path(project) / CONFIG_NAME
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(config_to_toml(config), encoding="utf-8")
    tmp.replace(path)
