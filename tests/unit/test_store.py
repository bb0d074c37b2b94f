import pytest
from sqlalchemy.exc import IntegrityError

from curate.oracle.base import Annotation
from curate.store import Store


def test_annotations_are_unique_per_item_and_annotator(store_url):
    store = Store(store_url)
    with store.transaction() as conn:
        assert store.add_annotation(conn, Annotation("a", "expert-1", "clickbait", 0))
        assert not store.add_annotation(conn, Annotation("a", "expert-1", "no-clickbait", 1))
        assert store.add_annotation(conn, Annotation("a", "expert-2", "no-clickbait", 0))
    rows = store.annotations()
    assert [(r["item_id"], r["annotator"], r["label"]) for r in rows] == [
        ("a", "expert-1", "clickbait"),
        ("a", "expert-2", "no-clickbait"),
    ]
    # The database itself refuses a duplicate, whatever the caller does.
    from sqlalchemy import insert

    from curate.store import annotations

    with pytest.raises(IntegrityError):
        with store.transaction() as conn:
            conn.execute(insert(annotations).values(item_id="a", annotator="expert-2", label="x", round=0, created_at=0))


def test_a_failed_transaction_writes_nothing_and_steps_resume(store_url):
    store = Store(store_url)
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            store.add_selection(conn, 0, [{"item_id": "a", "position": 0, "group_id": 0, "strategy": "random", "score": 0.5}])
            store.mark_step(conn, 0, "select", 0.1)
            raise RuntimeError("killed")
    assert store.selection(0) == []
    assert not store.step_done(0, "select")
    with store.transaction() as conn:
        store.add_splits(conn, [("a", "eval", 0), ("b", "finetune", 0)])
        store.mark_step(conn, 0, "split", 0.2, {"eval": 1})
        store.set_meta(conn, "stop_reason", "x")
    store.close()
    reopened = Store(store_url)
    assert reopened.step_done(0, "split")
    assert reopened.splits() == {"a": "eval", "b": "finetune"}
    assert reopened.step_records()[0]["info"] == {"eval": 1}
    assert reopened.get_meta("stop_reason") == "x"
    with pytest.raises(IntegrityError):
        with reopened.transaction() as conn:
            reopened.add_splits(conn, [("a", "finetune", 1)])


def test_exclusive_transactions_serialise_read_then_write(store_url):
    """Eight threads each read a counter and write it + 1 inside exclusive transactions: no update is lost."""
    import threading

    from sqlalchemy import insert, select, update

    from curate.store import meta_table

    store = Store(store_url)
    with store.transaction() as conn:
        conn.execute(insert(meta_table).values(key="counter", value="0"))

    def bump():
        for _ in range(10):
            with store.exclusive_transaction() as conn:
                value = int(conn.execute(select(meta_table.c.value).where(meta_table.c.key == "counter")).scalar_one())
                conn.execute(update(meta_table).where(meta_table.c.key == "counter").values(value=str(value + 1)))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.get_meta("counter") == 80
    store.close()
