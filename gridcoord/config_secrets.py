"""Secret settings: from the environment or from a private file, never from the YAML file.

Every secret setting (a ``SecretStr`` field of a configuration section: ``mqtt.password``,
``influxdb.token``, ``influxdb.password``) has a sibling ``<name>_file`` naming a file that
holds it, settable in the YAML file or as ``GRIDCOORD_<SECTION>__<NAME>_FILE`` (the
``*_FILE`` convention of container images, so Docker and Kubernetes secrets work unchanged).
The file must be a regular file that only its owner may access (mode 0600 or 0400), of at
most `MAX_SECRET_BYTES`; one trailing newline is dropped. A secret written into the YAML file
itself is refused: that file is meant to be versioned, and a warning in a log is read only
after the secret has already been pushed.

Problems name the setting, the variable and the file, never the secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr

from gridcoord.config_errors import Problems, env_name

_Settings = TypeVar("_Settings", bound=BaseModel)

#: Largest secret file read [bytes] (a certificate-sized token still fits).
MAX_SECRET_BYTES = 65_536
FILE_SUFFIX = "_file"


def secret_fields(config_type: type[BaseModel]) -> Iterator[tuple[str, str]]:
    """``(section, field)`` of every secret setting of the configuration's sections."""
    for section, info in config_type.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, field in model.model_fields.items():
                if _is_secret(field.annotation):
                    yield section, name


def refuse_file_secrets(
    raw: dict[str, Any], config_type: type[BaseModel], problems: Problems
) -> dict[str, Any]:
    """Record a problem for each secret written in the YAML file; return `raw` without them."""
    cleaned = dict(raw)
    for section, name in secret_fields(config_type):
        values = cleaned.get(section)
        if isinstance(values, dict) and values.get(name) is not None:
            problems.add(
                (section, name),
                "a secret must not be written in the configuration file; set "
                f"{env_name((section, name + FILE_SUFFIX))} to a file only its owner can read "
                f"(or {env_name((section, name))})",
            )
            cleaned[section] = {key: v for key, v in values.items() if key != name}
    return cleaned


def resolve_secret_files(config: _Settings, problems: Problems) -> _Settings:
    """`config` with every ``<name>_file`` read into its secret (problems recorded instead)."""
    updates: dict[str, dict[str, Any]] = {}
    for section, name in secret_fields(type(config)):
        values = getattr(config, section)
        file = getattr(values, name + FILE_SUFFIX, None)
        if file is None:
            continue
        loc = (section, name + FILE_SUFFIX)
        if getattr(values, name) is not None:
            problems.add(loc, f"set either {env_name((section, name))} or this file, not both")
            continue
        try:
            secret = read_secret_file(Path(file))
        except SecretFileError as exc:
            problems.add(loc, f"{file}: {exc}")
            continue
        updates.setdefault(section, {})[name] = SecretStr(secret)
    if problems or not updates:
        return config
    sections = {
        section: getattr(config, section).model_copy(update=values)
        for section, values in updates.items()
    }
    return config.model_copy(update=sections)


def private_key_problems(config: BaseModel, problems: Problems) -> None:
    """Record a problem for each TLS private key file others may read (or that is missing).

    ``mqtt.tls.key_file`` and ``ocpp.tls.key_file`` are handed to the TLS library, which
    reads any mode; a key others can read is a leaked key, so it is refused here, where
    ``check-config`` sees it, as the secret files are.
    """
    for section in ("mqtt", "ocpp"):
        tls = getattr(getattr(config, section, None), "tls", None)
        key_file = getattr(tls, "key_file", None)
        if key_file is None:
            continue
        loc = (section, "tls", "key_file")
        try:
            info = os.stat(key_file)
        except OSError as exc:
            problems.add(loc, f"{key_file}: cannot read file: {exc.strerror}")
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            problems.add(
                loc,
                f"{key_file}: mode {mode:04o} lets group or others access the private key; "
                "only its owner may (chmod 600 or 400)",
            )


class SecretFileError(Exception):
    """A secret file is unsafe or unreadable; the message never contains its content."""


def read_secret_file(path: Path) -> str:
    """The secret in `path`: a private regular file of UTF-8 text, one trailing newline dropped.

    Raises
    ------
    SecretFileError
        When the file is missing, not a regular file, accessible by group or others, too
        large, empty or not UTF-8.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretFileError(f"cannot read file: {exc.strerror}") from None
    try:
        info = os.fstat(fd)  # of the file opened, so a swapped symlink cannot slip past
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError("not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretFileError(
                f"mode {mode:04o} lets group or others access it; "
                "only its owner may (chmod 600 or 400)"
            )
        if info.st_size > MAX_SECRET_BYTES:
            raise SecretFileError(f"larger than {MAX_SECRET_BYTES} bytes")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(f"larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError("not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise SecretFileError("the file is empty")
    return text


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())
