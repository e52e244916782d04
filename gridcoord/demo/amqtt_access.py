"""Access control for the demo's in-process amqtt broker, from Mosquitto's own files.

`PasswdAuth` checks a login against the `passwd` file `gridcoord.broker` writes (`$7$` hashes,
verified with `gridcoord.broker.passwd`); a client without a known user and password is
refused. `AclCheck` applies the `acl` file's `user` blocks to every publish, subscription and
delivery: a publish needs a write rule matching its topic, a delivery a read rule; a
subscription is allowed only if a read rule covers its whole filter (a filter's wildcards are
taken literally: a device's exact setpoint rule never covers `+`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from paho.mqtt.client import topic_matches_sub

from gridcoord.broker.passwd import parse_passwd, verify_password


class PasswdAuth(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """amqtt login against a Mosquitto password file (`$7$` hashes); no anonymous access."""

    @dataclass
    class Config:
        """amqtt's plugin settings: the Mosquitto password file."""

        password_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        with open(self.config.password_file, encoding="utf-8") as file:
            self._users = parse_passwd(file.read())

    async def authenticate(self, *, session: Session) -> bool | None:
        """True for a known user with the right password; False otherwise (no anonymous)."""
        encoded = self._users.get(session.username or "")
        return encoded is not None and verify_password(session.password or "", encoded)


class AclCheck(BaseTopicPlugin):  # type: ignore[misc]
    """amqtt topic checks from a Mosquitto ACL file of `user` blocks (as `acl_text` writes)."""

    @dataclass
    class Config:
        """amqtt's plugin settings: the Mosquitto ACL file."""

        acl_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._read: dict[str, list[str]] = {}
        self._write: dict[str, list[str]] = {}
        user = ""
        with open(self.config.acl_file, encoding="utf-8") as file:
            for line in file:
                words = line.split(maxsplit=2)
                if len(words) == 2 and words[0] == "user":
                    user = words[1]
                elif len(words) == 3 and words[0] == "topic":
                    if words[1] in ("read", "readwrite"):
                        self._read.setdefault(user, []).append(words[2].strip())
                    if words[1] in ("write", "readwrite"):
                        self._write.setdefault(user, []).append(words[2].strip())

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        """True if the ACL lets this user publish to, subscribe to or receive `topic`."""
        user = session.username if session is not None else None
        if not user or not topic:
            return False
        if action == Action.PUBLISH:
            return any(topic_matches_sub(rule, topic) for rule in self._write.get(user, []))
        return any(topic_matches_sub(rule, topic) for rule in self._read.get(user, []))
