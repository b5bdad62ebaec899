"""What every route of the dashboard shares: its settings, tokens and templates.

Templates autoescape, and every value they print that is a plain string first has its control
characters shown as escapes (Jinja's ``finalize``): stored text — names, reasons, log lines —
reaches the page as text, whatever it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any, Final

import anyio
import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from lifecycle._draw import escape
from lifecycle._runs import AsyncRuns

from ._read import Activity

__all__ = ["HERE", "TEMPLATES", "Settings", "csrf_of", "new_token", "render"]

HERE: Final = Path(__file__).parent


def new_token() -> str:
    """A fresh random token (192 bits)."""
    return secrets.token_urlsafe(24)


def csrf_of(token: str) -> str:
    """The CSRF token the pages embed in their forms, derived from the access token."""
    return hmac.new(token.encode(), b"lifecycle-ui-csrf", hashlib.sha256).hexdigest()[:32]


class Settings:
    """What the routes need: the run service, the task group for actions, the tokens."""

    def __init__(self, token: str, read_only: bool) -> None:
        self.token = token
        self.csrf = csrf_of(token)
        self.read_only = read_only
        self.runs: AsyncRuns | None = None
        self.activity = Activity()
        self.tasks: anyio.abc.TaskGroup | None = None


def _plain(value: Any) -> Any:
    """Jinja's ``finalize``: stored strings lose their control characters before autoescaping
    (markup already made safe — our SVG — passes as it is)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return Markup(escape(value))
    return value


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        finalize=_plain,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


TEMPLATES: Final = _templates()


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` with the settings every page needs."""
    cfg: Settings = request.app.state.ui
    context.update(csrf=cfg.csrf, read_only=cfg.read_only)
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)
