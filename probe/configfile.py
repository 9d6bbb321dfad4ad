"""The user's config file (``$XDG_CONFIG_HOME/censorprobe/config.toml``): find, read, update.

``probe run`` reads it (control URL, timeouts, geolocation ...); ``probe onboard`` writes the
volunteer's consent and publishing choices into it. Writing follows two rules:

* **Nothing of the user's is lost.** The file is edited with ``tomlkit``, which keeps every other
  key, the comments and the layout; only the tables we are told to replace change. A file that
  does not parse is never rewritten (we would lose what the user typed): that is an error.
* **Atomic and durable.** The new text goes to a temporary file in the same folder, is fsync'd,
  then renamed over the old one, and the folder is fsync'd: a crash leaves either the old file
  or the new one, never half of each. A new file is created ``0600`` (it may hold a proxy's
  password); an existing file keeps its mode.

Paths follow the XDG base directories: ``$XDG_CONFIG_HOME`` (default ``~/.config``) for the
config file, ``$XDG_DATA_HOME`` (default ``~/.local/share``) for data such as the outbox.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from probe import fsutil

APP = "censorprobe"


class ConfigFileError(Exception):
    """The config file cannot be read, parsed or written (the message names the file)."""


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/censorprobe/config.toml`` (default ``~/.config/...``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP / "config.toml"


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/censorprobe`` (default ``~/.local/share/censorprobe``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP


def load(path: Path, *, must_exist: bool = False) -> dict[str, Any]:
    """The parsed file; ``{}`` when it does not exist (unless ``must_exist``: a file the user
    named with ``--config``). It is read as every input file is (:func:`probe.inputs.toml_file`:
    UTF-8 text, size cap, one line naming the file and the problem). Raises
    :class:`ConfigFileError`."""
    from probe import inputs

    if not must_exist and not path.exists() and not path.is_symlink():
        return {}
    try:
        return inputs.toml_file(path, what="config file")
    except inputs.InputError as exc:
        raise ConfigFileError(str(exc)) from None


def update(
    path: Path, tables: Mapping[str, Mapping[str, Any] | None], *, comment: str | None = None
) -> None:
    """Replace the given top-level tables (``None`` removes one), keep everything else.

    ``comment`` is written above a table that did not exist before (once, for the reader of
    the file). Raises :class:`ConfigFileError` (the file is then left as it was).
    """
    import tomlkit

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc}") from exc
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigFileError(
            f"config file {path} is not valid TOML ({exc}); fix or remove it first"
        ) from exc
    for name, values in tables.items():
        if values is None:
            if name in doc:
                del doc[name]
            continue
        table = tomlkit.table()
        if comment and name not in doc:
            table.comment(comment)
        for key, value in values.items():
            if value is not None:  # TOML has no null: an absent key means "not set"
                table[key] = value
        doc[name] = table
    write_atomic(path, tomlkit.dumps(doc).encode("utf-8"))


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """:func:`probe.fsutil.write_atomic` (a new file gets ``mode``), errors as ConfigFileError."""
    try:
        fsutil.write_atomic(path, data, mode=mode)
    except OSError as exc:
        raise ConfigFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
