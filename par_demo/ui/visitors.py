"""Which sessions the server keeps: Gradio holds, per session, its state (the last runs replay
and export from) and its own copy of the page's configuration, about 0.6 MB in all. At most
`state_session_capacity` sessions are kept; over that, the one used longest ago goes first among
those without an open page (API clients, pages closed), so a visitor whose page is open keeps
their run while clients come and go. A page that closes is freed at once, a session without an
open page once it has been idle for `idle_seconds`."""
from __future__ import annotations

import datetime

import gradio as gr
from gradio.state_holder import StateHolder


class KeptSessions(StateHolder):
    """Gradio's StateHolder with the eviction order above (Gradio's own evicts the session used
    longest ago, an open page included, and keeps a closed page's state for an hour)."""

    def __init__(self, idle_seconds: float) -> None:
        super().__init__()
        self.idle = datetime.timedelta(seconds=idle_seconds)
        self.open_pages: set[str] = set()

    def update(self, session_id: str) -> None:
        with self.lock:
            if session_id in self.session_data:
                self.session_data.move_to_end(session_id)
            while len(self.session_data) > self.capacity:
                self._forget(self._first_to_go(spare=session_id))

    def _first_to_go(self, spare: str) -> str:
        """The session used longest ago, one without an open page if there is one; never the
        session being served."""
        others = [s for s in self.session_data if s != spare]
        return next((s for s in others if s not in self.open_pages), others[0])

    def _forget(self, session_id: str) -> None:
        self.session_data.pop(session_id, None)
        self.time_last_used.pop(session_id, None)
        self.open_pages.discard(session_id)

    def delete_all_expired_state(self) -> None:
        """Gradio calls this every second: expired states, and sessions idle too long. Under
        the lock: an eviction meanwhile would fail Gradio's loop on a session it just listed."""
        with self.lock:
            super().delete_all_expired_state()
            now = datetime.datetime.now()
            idle = [s for s, used in list(self.time_last_used.items())
                    if now - used > self.idle and s not in self.open_pages]
            for session_id in idle:
                self._forget(session_id)

    def page_opened(self, request: gr.Request) -> None:
        with self.lock:
            if request.session_hash in self.session_data:
                self.open_pages.add(request.session_hash)

    def page_closed(self, request: gr.Request) -> None:
        with self.lock:
            self._forget(request.session_hash)


def keep_sessions(demo: gr.Blocks, kept: KeptSessions) -> None:
    """Make `kept` the launched app's session store (Gradio has no option for it)."""
    app = demo.server_app
    kept.set_blocks(demo)
    with app.state_holder.lock:
        kept.session_data.update(app.state_holder.session_data)
        kept.time_last_used.update(app.state_holder.time_last_used)
        app.state_holder = kept
