"""The text of a `mosquitto.conf` that keeps gridcoord's promises (README, "Broker settings").

One function for both brokers: the production one `gridcoord broker-config` writes and the
loopback one `gridcoord run` / `gridcoord demo` start. What each setting guarantees:

- `allow_anonymous false` + `password_file` + `acl_file`: every client authenticates and may
  only do what `acl` allows (DESIGN 3.6a);
- `persistence` with `autosave_on_changes`: the in-memory state (our session, its queued QoS 1
  messages, retained setpoints) is written to disk after every `AUTOSAVE_CHANGES` changes
  instead of every 30 s, so a broker crash (kill -9, power loss) loses at most that many
  changes; a clean stop (SIGTERM) saves everything;
- `max_queued_messages 0`, `max_queued_bytes 0`: no cap on messages queued for an absent
  gridcoord; Mosquitto's default of 1,000 drops acknowledged readings silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

# Changes (queued or retained messages, subscription changes) between two saves of the
# persistence file. Each save rewrites the whole file, so the cost grows with the backlog
# queued for an absent gridcoord: with 30,000 queued, 100 cut the broker's acknowledged rate to
# 0.35x of a timed save while 1,000 cost nothing measurable (bench/broker_autosave.py,
# docs/performance.md); both lost 2 of 30,000 acknowledged messages to kill -9.
AUTOSAVE_CHANGES = 1000


@dataclass(frozen=True, slots=True)
class Listener:
    """One `listener` block: port, bind address (None: every interface), extra lines (TLS)."""

    port: int
    bind: str | None = None
    options: tuple[str, ...] = ()


def mosquitto_conf(
    *,
    listeners: Sequence[Listener],
    passwd: PurePath,
    acl: PurePath,
    data_dir: PurePath,
    log_dest: str = "stdout",
    header: Sequence[str] = (),
    extra: Sequence[str] = (),
    pid_file: PurePath | None = None,
) -> str:
    """A whole configuration file.

    Parameters
    ----------
    listeners
        Where the broker listens (TLS options per listener).
    passwd, acl
        The password and ACL files, as paths the broker sees.
    data_dir
        Directory of the persistence file, as the broker sees it.
    log_dest
        Mosquitto's `log_dest` value (`stdout`, `file PATH`).
    header
        Comment lines at the top (without `#`).
    extra
        Further settings appended (e.g. `user root`).
    pid_file
        Where the broker writes its process id (the loopback broker: so that a supervisor or
        a test can end exactly it).
    """
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_on_changes true",
        f"autosave_interval {AUTOSAVE_CHANGES}",
        "max_queued_messages 0",
        "max_queued_bytes 0",
        "max_inflight_messages 0",
        "set_tcp_nodelay true",
        f"log_dest {log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        *([f"pid_file {pid_file}"] if pid_file is not None else []),
        *extra,
    ]
    for listener in listeners:
        bind = f" {listener.bind}" if listener.bind else ""
        lines += ["", f"listener {listener.port}{bind}", *listener.options]
    return "\n".join(lines) + "\n"
