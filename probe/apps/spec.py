"""App files: load and validate the TOML description of an app's API hosts (docs/apps.md).

An app file names the app, the OONI test whose keys it produces (``ooni_test``; none for our
generic ``app_endpoints`` test), an optional CA bundle of the app's own (``ca_file``, relative
to the file) and a list of ``[[hosts]]``. Each host is a DNS name or a fixed IP address with
its ports, the last stage to run (``dns``, ``tcp``, ``tls``, ``http``), what to speak over TLS
and which trust store validates it (``trust = "system"`` or ``"app"`` = Mozilla's roots plus
the app's CA), and the OONI component it feeds (``component``).

The built-in app files live in ``targets/apps/`` at the repository root, found from this file's
location (no copy inside the package). Every problem raises :class:`AppSpecError` with a one-line
message naming the file and the key.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from probe.netaddr import parse_ip

#: the OONI tests an app file may implement, and the components each one knows
OONI_COMPONENTS: dict[str, frozenset[str]] = {
    "whatsapp": frozenset({"endpoints", "registration", "web"}),
    "telegram": frozenset({"dc", "web"}),
    "signal": frozenset({"backend", "uptime"}),
    "facebook_messenger": frozenset(
        {"stun", "b_api", "b_graph", "edge", "external_cdn", "scontent_cdn", "star"}
    ),
}
STAGES = ("dns", "tcp", "tls", "http")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$"
)

Port = Annotated[int, Field(ge=1, le=65535)]


class AppSpecError(Exception):
    """An app file or app name that cannot be used; the message is one line for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class HostSpec(_Strict):
    """One host (or fixed address) of an app and what to do with it, stage by stage."""

    id: str
    host: str
    role: str = ""
    ports: list[Port] = Field(default_factory=lambda: [443], min_length=1)
    #: the last stage to run; the earlier ones always run (dns is skipped for an IP literal)
    stage: Literal["dns", "tcp", "tls", "http"] = "http"
    #: "https": TLS then HTTP; "http": plain HTTP on every port (Telegram's DCs, even on 443)
    scheme: Literal["https", "http"] = "https"
    method: Literal["GET", "POST"] = "GET"
    path: str = "/"
    #: "system": Mozilla's roots (plus --ca-file); "app": those plus the app file's ca_file
    trust: Literal["system", "app"] = "system"
    #: the OONI component this host feeds (see OONI_COMPONENTS); free text for other apps
    component: str = ""
    #: False: measured and reported, but ignored by every verdict (Signal's uptime name)
    in_verdict: bool = True
    #: DNS answers must all fall in these networks to be consistent (Facebook's AS32934 rule)
    expected_networks: list[str] = Field(default_factory=list)
    #: HTTP statuses that count as healthy; empty = any HTTP response (OONI's rule)
    healthy_status: list[int] = Field(default_factory=list)
    note: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be snake_case (a-z, 0-9, _), starting with a letter")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if parse_ip(value) is None and not _HOSTNAME.match(value):
            raise ValueError(f"not a host name or IP address: {value!r}")
        return value.strip("[]")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError("must start with / and contain no white space")
        return value

    @field_validator("expected_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not a CIDR network: {item!r}") from None
        return value

    @property
    def is_ip(self) -> bool:
        return parse_ip(self.host) is not None

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "https" and self.stage in ("tls", "http")

    def url(self, port: int) -> str:
        """The URL of this host on ``port`` (also what the control is asked about)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        netloc = host if port == default else f"{host}:{port}"
        return f"{self.scheme}://{netloc}{self.path}"


class AppSpec(_Strict):
    """One app: its OONI test (if any), its own CA (if any) and its hosts."""

    name: str
    title: str
    ooni_test: Literal["whatsapp", "telegram", "signal", "facebook_messenger"] | None = None
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    #: PEM bundle of the app's own roots; relative paths are relative to the app file
    ca_file: str | None = None
    hosts: list[HostSpec] = Field(min_length=1)
    #: where the spec was loaded from (set by the loader, not a TOML key)
    origin: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be snake_case (a-z, 0-9, _), starting with a letter")
        return value

    @property
    def key(self) -> str:
        """The item key the runner uses (``app:<name>``)."""
        return f"app:{self.name}"

    def host(self, host_id: str) -> HostSpec:
        for h in self.hosts:
            if h.id == host_id:
                return h
        raise KeyError(host_id)


def repo_apps_dir() -> Path:
    """``targets/apps`` of the repository this package belongs to."""
    return Path(__file__).resolve().parents[2] / "targets" / "apps"


def builtin_names(directory: Path | None = None) -> list[str]:
    folder = directory or repo_apps_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_builtin_apps(names: Sequence[str], *, directory: Path | None = None) -> list[AppSpec]:
    """The built-in apps called ``names`` (``"all"`` = every one), in the order given."""
    folder = directory or repo_apps_dir()
    if not folder.is_dir():
        raise AppSpecError(
            f"the built-in app files are missing: {folder} is not a directory "
            "(run from a source checkout, or use --app-file PATH)"
        )
    valid = builtin_names(folder)
    wanted: list[str] = []
    for name in names:
        for item in valid if name == "all" else [name]:
            if item not in valid:
                raise AppSpecError(
                    f"unknown app {name!r}; valid names: {', '.join(valid + ['all'])}"
                )
            if item not in wanted:
                wanted.append(item)
    return [load_app_file(folder / f"{item}.toml") for item in wanted]


def load_app_file(path: Path) -> AppSpec:
    """Read and validate one app file; raises :class:`AppSpecError` naming file and key."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise AppSpecError(f"app file {path}: no such file") from None
    except OSError as exc:
        raise AppSpecError(f"app file {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise AppSpecError(f"app file {path}: not valid TOML ({exc})") from None
    return parse_app(data, origin=path)


def parse_app(data: dict[str, Any], *, origin: Path) -> AppSpec:
    """Validate the parsed TOML of an app file (``origin`` names it in errors, anchors paths)."""
    try:
        spec = AppSpec.model_validate({**data, "origin": str(origin)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _where(data, err["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise AppSpecError(f"app file {origin}: {where}: {err['msg']}{more}") from None
    _check(spec, origin)
    if spec.ca_file is not None:
        ca = Path(spec.ca_file)
        ca = ca if ca.is_absolute() else origin.resolve().parent / ca
        if not ca.is_file():
            raise AppSpecError(f"app file {origin}: ca_file: {ca} does not exist")
        spec = spec.model_copy(update={"ca_file": str(ca)})
    return spec


def _where(data: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """``hosts[2].ports`` -> ``hosts[2] (id "b_api").ports``: the key, as the user wrote it."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                label += f" (id {node['id']!r})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "top level"


def _check(spec: AppSpec, origin: Path) -> None:
    seen: set[str] = set()
    for i, h in enumerate(spec.hosts):
        where = f"app file {origin}: hosts[{i}] (id {h.id!r})"
        if h.id in seen:
            raise AppSpecError(f"{where}.id: duplicate id")
        seen.add(h.id)
        if h.stage == "dns" and h.is_ip:
            raise AppSpecError(f"{where}.stage: a fixed address has no DNS stage to run")
        if h.stage == "tls" and h.scheme != "https":
            raise AppSpecError(f'{where}.stage: a tls stage needs scheme = "https"')
        if h.trust == "app" and spec.ca_file is None:
            raise AppSpecError(f'{where}.trust: "app" needs a top-level ca_file')
        if h.expected_networks and h.is_ip:
            raise AppSpecError(f"{where}.expected_networks: only for names (DNS answers)")
        if spec.ooni_test is not None:
            allowed = OONI_COMPONENTS[spec.ooni_test]
            if h.component not in allowed:
                raise AppSpecError(
                    f"{where}.component: {h.component!r} is not a {spec.ooni_test} component "
                    f"({', '.join(sorted(allowed))})"
                )
