"""The xdist scheduler of ``--dist loadgroup`` runs: xdist's, topping a worker up later.

xdist's loadgroup hands a worker its next group as soon as the worker has two
or fewer tests pending. A group of one or two tests is then taken on at once,
and a worker finishing a big group takes every small group left while the other
worker is still busy: in the main job of 2026-12-07 one worker ran 1194 s and
the other 824 s. This scheduler tops a worker up only when it is on its last
pending test, so the next group goes to whichever worker frees up first (with
the groups ordered longest first, that is longest-processing-time scheduling).
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
