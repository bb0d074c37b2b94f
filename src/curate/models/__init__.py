"""Scorers and trainable classifiers behind one small interface (see ``curate.models.base``)."""
