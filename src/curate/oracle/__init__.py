"""Where labels come from: simulated experts now; the web app and imported files plug in as oracles too."""

from curate.oracle.base import Annotation, Oracle, WebOracle
from curate.oracle.simulated import SimulatedExperts, crowd_labels

__all__ = ["Annotation", "Oracle", "SimulatedExperts", "WebOracle", "crowd_labels"]
