"""The loadgroup scheduler tops a worker up on its last pending test, so small groups go to whichever worker frees up."""

from __future__ import annotations

from types import SimpleNamespace

from junkdna_core.pytest_plugin.scheduling import LastTestGroupScheduling

# Groups longest first, as GroupOrder leaves them: a long group of 4 tests, a longer one of 12, then small ones.
COLLECTION = ([f"t.py::ft[{i}]@ft" for i in range(4)] + [f"t.py::mag[{i}]@mag" for i in range(12)]
              + [f"t.py::{g}[{i}]@{g}" for g in ("random", "rtn", "lowrank") for i in range(2)])


class FakeNode:
    """What the scheduler sees of an xdist worker: the tests it was sent, in order."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduler() -> tuple[LastTestGroupScheduling, FakeNode, FakeNode]:
    config = SimpleNamespace(getvalue=lambda name: ["2*popen"] if name == "tx" else None,
                             option=SimpleNamespace(loadscopereorder=False))
    scheduler = LastTestGroupScheduling(config)
    nodes = FakeNode("gw0"), FakeNode("gw1")
    for node in nodes:
        scheduler.add_node(node)
    for node in nodes:
        scheduler.add_node_collection(node, COLLECTION)
    scheduler.schedule()
    return scheduler, *nodes


def _groups(node: FakeNode) -> list[str]:
    return list(dict.fromkeys(COLLECTION[i].split("@")[1] for i in node.sent))


def test_each_worker_starts_with_one_group_and_gets_the_next_on_its_last_pending_test():
    scheduler, gw0, gw1 = _scheduler()
    assert _groups(gw0) == ["ft"] and _groups(gw1) == ["mag"]
    for index in gw0.sent[:2]:  # xdist's loadgroup would top gw0 up here, with two tests pending
        scheduler.mark_test_complete(gw0, index)
    assert _groups(gw0) == ["ft"]
    scheduler.mark_test_complete(gw0, gw0.sent[2])  # one left: the next group goes to gw0 now
    assert _groups(gw0) == ["ft", "random"]
    for index in gw1.sent[:11]:
        scheduler.mark_test_complete(gw1, index)
    assert _groups(gw1) == ["mag", "rtn"]  # the small groups are shared out, not taken by one worker at once
    scheduler.mark_test_complete(gw0, gw0.sent[3])
    scheduler.mark_test_complete(gw0, gw0.sent[4])
    assert _groups(gw0) == ["ft", "random", "lowrank"] and not gw0.shutting_down
    for node in (gw0, gw1):
        for index in node.sent:
            if not scheduler.assigned_work[node][COLLECTION[index].split("@")[1]][COLLECTION[index]]:
                scheduler.mark_test_complete(node, index)
    assert gw0.shutting_down and gw1.shutting_down and scheduler.tests_finished
