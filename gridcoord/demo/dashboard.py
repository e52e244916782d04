"""The demo's dashboard port: two demos on one machine must not clash on 8080.

A demo whose port was left at its default (``api.port``, 8080) and finds it taken — most
often by another demo — serves its dashboard on a free port instead and says so (the service
prints the URL it listens on). A port someone chose (``GRIDCOORD_API__PORT``) is kept: if it is
taken, the demo ends with an error that names the setting, before anything starts.
"""

from __future__ import annotations

import errno
import logging

from gridcoord.api.server import bind_socket
from gridcoord.config import Api

log = logging.getLogger(__name__)

PORT_SETTING = "GRIDCOORD_API__PORT"


class DashboardPortError(RuntimeError):
    """The dashboard's configured port is taken."""


def dashboard_api(api: Api) -> Api:
    """``api``, or a copy on a free port when its default port is taken.

    Raises
    ------
    DashboardPortError
        the port was configured and is taken.
    """
    if not api.enabled or api.port == 0 or not _taken(api.host, api.port):
        return api
    if "port" in api.model_fields_set:
        raise DashboardPortError(
            f"the dashboard's port {api.host}:{api.port} is taken (another demo?); choose "
            f"another with {PORT_SETTING}=<port> (0: any free port)"
        )
    log.warning(
        "the dashboard's default port %s:%d is taken (another demo?): it listens on a free "
        "port instead, printed below; %s=<port> chooses one",
        api.host,
        api.port,
        PORT_SETTING,
    )
    return api.model_copy(update={"port": 0})


def _taken(host: str, port: int) -> bool:
    """Whether binding ``host:port`` as the API server does fails because it is in use."""
    try:
        bind_socket(host, port).close()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return True
        raise
    return False
