"""``granian --interface asgi --factory asgi_factory:create_app``: our app on granian.

The database comes from RAINER_DATABASE, as for ``rainer serve``; the storage starts and stops
through ASGI lifespan events, which granian's asgi interface sends.
"""

from __future__ import annotations

import logging
import os

from rainer.server.app import RainerApp
from rainer.storage import open_storage


def create_app() -> RainerApp:
    logging.basicConfig(level=os.environ.get("RAINER_LOG_LEVEL", "warning").upper())
    return RainerApp(open_storage(os.environ.get("RAINER_DATABASE", "sqlite:///rainer.db")))
