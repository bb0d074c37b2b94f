"""The store is the only module that knows the tables (issue 14, "One owner per concept").

Every module under ``src/curate`` is parsed with :mod:`ast` (nothing is imported or run), and outside
``curate/store.py`` none may:

- import ``sqlalchemy`` (``import sqlalchemy``, ``from sqlalchemy... import ...``, anywhere in the module,
  function bodies included);
- import from ``curate.store`` anything but :data:`STORE_API` (the tables, ``metadata`` and any other
  name are the store's own), nor import the module itself (``import curate.store``, ``from curate import
  store``), which would reach its tables as attributes (``store.annotations``) where a checker cannot tell
  them from a :class:`~curate.store.Store` instance's methods;
- call ``.execute(``, ``.exec_driver_sql(`` or ``.executemany(`` on anything (SQL runs in the store's
  methods only), or touch a ``.engine`` attribute (the store's engine is its own: callers get connections
  from ``store.transaction()``, ``store.exclusive_transaction()`` or ``store.connection()``).

Exceptions: none today. ``Connection`` is in :data:`STORE_API` although it is SQLAlchemy's class: the store
re-exports it so that callers can type the ``conn`` they pass back to its methods without importing
sqlalchemy; it carries no schema. A future exception goes into :data:`ALLOWED` with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "curate"
STORE = "store.py"  # relative to the package folder
STORE_API = frozenset({"Store", "Connection", "DB_NAME"})
SQL_CALLS = frozenset({"execute", "exec_driver_sql", "executemany"})
# {(module path relative to src/curate, rule): reason}; rules are "sqlalchemy", "store-name", "sql-call", "engine".
ALLOWED: dict[tuple[str, str], str] = {}


def _module_violations(rel: str, source: str) -> list[str]:
    """The layering rules ``source`` (the module at ``rel``) breaks, one line each (``rel:line: rule: what``)."""
    tree = ast.parse(source, filename=rel)
    found: list[tuple[str, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "sqlalchemy" or a.name.startswith("sqlalchemy."):
                    found.append(("sqlalchemy", node.lineno, f"import {a.name}"))
                if a.name == "curate.store":
                    found.append(("store-name", node.lineno, f"import {a.name} (import Store, Connection from it)"))
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and (mod == "sqlalchemy" or mod.startswith("sqlalchemy.")):
                found.append(("sqlalchemy", node.lineno, f"from {mod} import ..."))
            is_store = (node.level == 0 and mod == "curate.store") or (node.level > 0 and mod.split(".")[-1:] == ["store"]
                                                                       and rel.count("/") + 1 == node.level)
            if is_store:
                for a in node.names:
                    if a.name not in STORE_API:
                        found.append(("store-name", node.lineno, f"from curate.store import {a.name}"))
            if (node.level == 0 and mod == "curate") or (node.level == rel.count("/") + 1 and not mod):
                for a in node.names:
                    if a.name == "store":
                        found.append(("store-name", node.lineno, "import of the store module (import Store, "
                                                                 "Connection from it)"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
            found.append(("sql-call", node.lineno, f".{node.func.attr}(...)"))
        elif isinstance(node, ast.Attribute) and node.attr == "engine":
            found.append(("engine", node.lineno, ".engine"))
    return [f"{rel}:{line}: {rule}: {what}" for rule, line, what in sorted(found, key=lambda f: f[1])
            if (rel, rule) not in ALLOWED]


def layering_violations(root: Path = SRC) -> list[str]:
    """Every break of the rules (module doc) in the package at ``root`` (the folder of ``__init__.py``)."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == STORE:
            continue
        out += _module_violations(rel, path.read_text(encoding="utf-8"))
    return out


def test_only_the_store_knows_the_tables_and_writes_sql():
    assert SRC.is_dir() and (SRC / STORE).is_file()
    problems = layering_violations()
    assert not problems, "SQL or tables outside curate/store.py (move them into a Store method):\n" + "\n".join(problems)


def test_store_api_names_exist_and_are_no_tables():
    import curate.store as store
    from sqlalchemy import MetaData, Table

    for name in STORE_API:
        assert hasattr(store, name), name
        assert not isinstance(getattr(store, name), (Table, MetaData)), name


def test_the_checker_catches_each_way_in():
    bad = {
        "import sqlalchemy": "sqlalchemy",
        "from sqlalchemy.engine import Connection": "sqlalchemy",
        "def f():\n    from sqlalchemy import select": "sqlalchemy",
        "from curate.store import Store, annotations": "store-name",
        "from curate.store import metadata": "store-name",
        "from ..store import assignments": "store-name",
        "import curate.store as s\nx = s.annotators": "store-name",
        "from curate import store\nx = store.selections": "store-name",
        "from .. import store": "store-name",
        "import curate.store\nx = curate.store.steps": "store-name",
        "def f(conn):\n    conn.execute('SELECT 1')": "sql-call",
        "def f(conn):\n    conn.exec_driver_sql('SELECT 1')": "sql-call",
        "def f(store):\n    return store.engine.connect()": "engine",
    }
    for source, rule in bad.items():
        problems = _module_violations("web/x.py", source)
        assert any(f": {rule}: " in p for p in problems), (source, problems)
    good = ("from curate.store import Connection, Store\n"
            "from curate.records import Annotation\n"
            "def f(store: Store, conn: Connection):\n    return store.annotator_exists(conn, 'a')\n")
    assert _module_violations("web/x.py", good) == []
