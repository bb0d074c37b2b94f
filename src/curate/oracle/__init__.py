"""Where labels come from: simulated experts now; the web app and imported files plug in as oracles too."""

from curate.oracle.base import Annotation, Oracle
from curate.oracle.simulated import SimulatedExperts, crowd_labels

__all__ = ["Annotation", "Oracle", "SimulatedExperts", "crowd_labels"]
