"""The xdist scheduler of ``--dist loadgroup`` runs: xdist's, topping a worker up on its last pending test.

An xdist worker runs a test only once it knows the next one (or is told to stop),
so a worker with one test pending is waiting for work. xdist's loadgroup tops a
worker up earlier, with two tests pending: a group of one or two tests is then
followed by the next group at once, and the last small groups go to whichever
worker happens to ask, not to the one that frees up first (in the main job of
2026-12-07 one worker ran 1194 s and the other 824 s). Topping up on the last
pending test, with the groups longest first and each group's tests longest first
(:func:`~junkdna_core.pytest_plugin.timing.order_by_duration`, so a group ends on
its shortest test), gives each group to the worker that frees up first:
longest-processing-time scheduling.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadGroupScheduling

PENDING_BEFORE_TOP_UP = 1


class LastTestGroupScheduling(LoadGroupScheduling):
    """``--dist loadgroup``, a worker getting its next group when one test is left pending."""

    def _reschedule(self, node: Any) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > PENDING_BEFORE_TOP_UP:
            return
        self._assign_work_unit(node)
