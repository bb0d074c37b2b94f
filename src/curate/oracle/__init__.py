"""Where labels come from: simulated experts now; the web app and imported files plug in as oracles too."""

from curate.oracle.base import Annotation, Oracle, WebOracle
from curate.oracle.simulated import SimulatedExperts, crowd_labels

__all__ = ["Annotation", "Oracle", "SimulatedExperts", "WebOracle", "crowd_labels", "make_oracle"]


def make_oracle(settings, gold: dict[str, str] | None, labels: list[str], *, seed: int) -> Oracle:
    """The oracle of ``[oracle]`` (``settings``, a :class:`curate.config.OracleConfig`): people in the labelling app
    (``kind = "web"``) or simulated experts answering from ``gold`` (``{item_id: label}``) with ``experts_per_item``
    and ``expert_kappa``, seeded by ``seed``."""
    if settings.kind == "web":
        return WebOracle()
    return SimulatedExperts(gold, labels, n_experts=settings.experts_per_item, target_kappa=settings.expert_kappa,
                            seed=seed)
