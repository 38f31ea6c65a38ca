"""The operations board: a web page at `/` (plain HTML, CSS and JavaScript modules shipped in
`static/`, no build step, nothing loaded from the internet) on top of notify's public API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from ..alert import lifecycle
from ..causes import Cause

STATIC = Path(__file__).with_name("static")


def mount(app: FastAPI, *, auth_required: bool, causes: Callable[[], tuple[Cause, ...]]) -> None:
    @app.get("/", include_in_schema=False)
    async def board() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/board/config.json", include_in_schema=False)
    async def config() -> dict[str, Any]:
        """What the page needs to know: whether actions need an API key, and the alert lifecycle
        (its statuses, which are active, and the actions that lead from one to another), and the
        causes a resolve picks from."""
        return {"auth_required": auth_required, "lifecycle": lifecycle(), "causes": [c.model_dump() for c in causes()]}

    app.mount("/board", StaticFiles(directory=STATIC), name="board")
