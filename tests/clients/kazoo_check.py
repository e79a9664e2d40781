"""Drives a ZooKeeper server with kazoo: connect, CRUD, a data watch, and kazoo's Lock recipe
between two clients. Used by tests/it/external.rs against the embedded server and a real
ZooKeeper.

Usage: python3 kazoo_check.py HOSTS ROOT    (prints one "ok <step>" line per step; exit 0 on success)
"""
import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError


def ok(step):
    print("ok", step, flush=True)


def main(hosts, root):
    a = KazooClient(hosts=hosts, timeout=10.0)
    b = KazooClient(hosts=hosts, timeout=10.0)
    a.start(timeout=15)
    b.start(timeout=15)
    ok("connect")

    a.ensure_path(root)
    path = a.create(root + "/node", b"hello")
    assert path == root + "/node", path
    try:
        a.create(root + "/node", b"again")
        raise AssertionError("create of an existing node succeeded")
    except NodeExistsError:
        pass
    data, stat = b.get(root + "/node")
    assert data == b"hello" and stat.version == 0, (data, stat)
    stat = a.set(root + "/node", b"world", version=0)
    assert stat.version == 1, stat
    seq = a.create(root + "/seq-", b"", sequence=True, ephemeral=True)
    assert seq == root + "/seq-0000000001", seq
    assert sorted(b.get_children(root)) == ["node", "seq-0000000001"], b.get_children(root)
    ok("crud")

    fired = threading.Event()
    events = []

    def watcher(event):
        events.append(event)
        fired.set()

    b.get(root + "/node", watch=watcher)
    a.set(root + "/node", b"changed")
    assert fired.wait(10), "data watch did not fire"
    assert events[0].type == "CHANGED" and events[0].path == root + "/node", events
    ok("watch")

    t = a.transaction()
    t.create(root + "/txn", b"t")
    t.check(root + "/node", 2)
    t.set_data(root + "/node", b"in txn")
    results = t.commit()
    assert results[0] == root + "/txn" and results[1] is True, results
    ok("transaction")

    lock_a = a.Lock(root + "/lock", "a")
    lock_b = b.Lock(root + "/lock", "b")
    assert lock_a.acquire(timeout=10)
    assert not lock_b.acquire(blocking=False), "both clients hold the lock"
    assert lock_b.contenders() == ["a"], lock_b.contenders()
    got = []
    waiter = threading.Thread(target=lambda: got.append(lock_b.acquire(timeout=10)))
    waiter.start()
    lock_a.release()
    waiter.join(15)
    assert got == [True], got
    lock_b.release()
    ok("lock")

    a.delete(root, recursive=True)
    try:
        b.get(root + "/node")
        raise AssertionError("node still there")
    except NoNodeError:
        pass
    a.stop()
    b.stop()
    a.close()
    b.close()
    ok("done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
