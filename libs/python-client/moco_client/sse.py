"""Server-Sent Events: a parser for a response body, and a job's live stream resumed after drops."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from http.client import HTTPException
from typing import IO, Any, Dict, Iterator, List, Optional, Union

from .http import Http, segment

TERMINAL_STATUSES = frozenset(("succeeded", "failed", "cancelled"))
# Pause before reconnecting a dropped stream (proxy timeout, API restart).
RECONNECT_DELAY_S = 0.5


@dataclass
class Message:
    event: str
    data: str
    id: Optional[str]


def parse(body: IO[bytes]) -> Iterator[Message]:
    """Messages of an ``text/event-stream`` body, as the HTML spec's parser reads them."""
    event, data, last_id = "", [], None  # type: str, List[str], Optional[str]
    for raw in body:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield Message(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: the heartbeat
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value


@dataclass
class JobEvent:
    """A row of the job's event log: ``data`` holds the event's fields (``status`` on transitions)."""

    event: Dict[str, Any]

    @property
    def terminal(self) -> bool:
        status = self.event.get("data", {}).get("status")
        return (status if isinstance(status, str) else self.event.get("type")) in TERMINAL_STATUSES


@dataclass
class MetricPoints:
    """New metric values: ``series`` is ``[{"name", "points": [[step, value], ...]}]``."""

    series: List[Dict[str, Any]]


StreamItem = Union[JobEvent, MetricPoints]


def job_stream(transport: Http, job_id: str, after: Optional[int] = None, metrics_after_step: Optional[int] = None) -> Iterator[StreamItem]:
    """A job's events and new metric values until its terminal event. A dropped connection is resumed
    from the last event id (``Last-Event-ID``), so no event is missed or repeated."""
    last_id = after
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        path = f"/v1/jobs/{segment(job_id)}/events"
        try:
            # The client's read timeout (60 s by default) outlasts the server's 15 s heartbeats, so it
            # only fires on a dead connection, which is then resumed like any drop.
            with transport.open(path, headers=headers, query={"metrics_after_step": metrics_after_step}, retry=True) as res:
                if res.status == 204:
                    return  # the job has finished and nothing is left after last_id
                for message in parse(res):
                    if message.event == "metrics":
                        series = json.loads(message.data)["data"]
                        for s in series:
                            if s["points"]:
                                metrics_after_step = max(metrics_after_step or 0, s["points"][-1][0] - 1)
                        yield MetricPoints(series)
                        continue
                    item = JobEvent(json.loads(message.data))
                    last_id = item.event["id"]
                    yield item
                    if item.terminal:
                        return
        except (OSError, HTTPException):
            pass  # a reset or cut stream: resumed below
        # The server ends a stream only after the terminal event: any other end is a drop.
        time.sleep(RECONNECT_DELAY_S)
