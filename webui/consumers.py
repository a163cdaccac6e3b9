"""The live job page's WebSocket: `ws/jobs/<id>/`.

On connect: refuse anyone but the job's owner, join the job's group, then send a
snapshot of every completed round and the running round's progress; afterwards one
message per event. Messages are
HTML for htmx's WebSocket extension: the status block (swapped in place) and the
rounds as table rows in a staging <template>, which the page's script moves into
the table by round number, so a round the snapshot and an event both carry is
shown once.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from orchestrator import selectors
from orchestrator.events import RoundCompleted, RoundProgressed, StatusChanged, job_group

from .views import job_status_context

REFUSED = 4403


def render_live_message(job_id: int, *, round_numbers: list[int] | None) -> str:
    """The status block plus the given rounds (None = every completed round)."""
    job = selectors.job_for_job_id(job_id=job_id)
    if job is None:
        return ""
    views = selectors.round_views(job=job, numbers=round_numbers)
    return render_to_string("jobs/_live_message.html", {**job_status_context(job), "round_views": views})


class JobConsumer(AsyncWebsocketConsumer):
    job_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        job = await database_sync_to_async(selectors.job_for_user)(user=user, job_id=job_id)
        if job is None:
            await self.close(code=REFUSED)
            return
        self.job_id = job_id
        # Join before reading the snapshot: a round completing in between arrives as an
        # event too (shown once, by round number) instead of being missed.
        await self.channel_layer.group_add(job_group(job_id), self.channel_name)
        await self.accept()
        await self._send_rounds(None)

    async def disconnect(self, code: int) -> None:
        if self.job_id is not None:
            await self.channel_layer.group_discard(job_group(self.job_id), self.channel_name)

    async def _send_rounds(self, round_numbers: list[int] | None) -> None:
        assert self.job_id is not None
        message = await database_sync_to_async(render_live_message)(self.job_id, round_numbers=round_numbers)
        if message:
            await self.send(text_data=message)

    async def job_round_completed(self, event: RoundCompleted) -> None:
        await self._send_rounds([event["round"]])

    async def job_round_progressed(self, event: RoundProgressed) -> None:
        await self._send_rounds([])  # the status block: clients done and training, the bar, time left

    async def job_status_changed(self, event: StatusChanged) -> None:
        await self._send_rounds([])
