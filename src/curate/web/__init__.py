"""The experts' labelling web app (``curate serve``): blind multi-annotator labelling, agreement, adjudication.

Kept free of heavy imports so the CLI can use :mod:`curate.web.auth` without loading FastAPI:

* :mod:`curate.web.auth`: personal access tokens (``add_annotator``, ``authenticate``, ``revoke_annotator``,
  ``rotate_token``, ``list_annotators``).
* :mod:`curate.web.assign`: handing out items, storing labels, skip and undo (plain functions over the store).
* :mod:`curate.web.app`: ``create_app(project)`` and ``serve(project_path, host, port)``.

Run it with ``python -m curate.web PROJECT [--host 127.0.0.1] [--port 8000]``.
"""
