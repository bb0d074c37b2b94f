"""curate: boundary-case curation of expert labels for text classifiers.

The loop (METHOD.md section 1): a model scores the pool, the query strategy picks the
boundary cases where it is confused, the oracle (experts) labels them, the student is
fine-tuned, and agreement with the experts is measured by Cohen's kappa, round after round.
"""

from curate.errors import CurateError

__all__ = ["CurateError", "__version__"]
__version__ = "0.1.0"
