"""``lifecycle ui``: the dashboard — jobs, runs, DAGs and live logs in a web page.

The optional extra ``lifecycle[ui]`` (Starlette, Jinja2, uvicorn) is imported here and nowhere
else in the library. Layout: ``_app`` (the application and its guard), ``_context`` (settings,
tokens, templates), ``_pages`` (the pages), ``_live`` (server-sent events of a run),
``_actions`` (run, stop, rerun), ``_read`` (what the pages read, framework-free), ``_serve``
(uvicorn), ``templates/`` and ``static/`` (one stylesheet, one small script of our own; no CDN,
no build step). The pictures come from :mod:`lifecycle._draw`.
"""

from __future__ import annotations

from ._app import create_app
from ._context import csrf_of, new_token
from ._serve import serve

__all__ = ["create_app", "csrf_of", "new_token", "serve"]
