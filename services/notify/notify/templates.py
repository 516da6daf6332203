"""What pushes and SMS say, per locale: templates with declared variables, checked at start-up.

One TOML file per locale (`notify/locales/<locale>.toml`, or `NOTIFY_TEMPLATES_DIR`) holds a
table per message kind and channel. `KINDS` says which variables the code gives each kind; a
template naming any other, a kind or channel we do not send, or an en-IN file lacking one of
them stops start-up with one line, so a blank never reaches a message. A locale is chosen by
`recipients.locale`: the locale itself, else a shipped one of its language (`hi` -> hi-IN), else
en-IN; a kind missing from a locale's file falls back the same way. Pure but for `load`.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn, cast, get_args

from rtmn_shared.money import Money, exponent
from rtmn_shared.settings import SettingsError

Channel = Literal["push", "sms"]
Grouping = Literal["western", "indian"]
Value = str | int | Money
FALLBACK = "en-IN"
SHIPPED = Path(__file__).parent / "locales"


@dataclass(frozen=True)
class Kind:
    variables: frozenset[str]
    channels: frozenset[Channel]


def _kind(variables: tuple[str, ...], channels: tuple[Channel, ...] = ("push", "sms")) -> Kind:
    return Kind(frozenset(variables), frozenset(channels))


# Every message notify words itself, and exactly the variables its code fills in.
KINDS: dict[str, Kind] = {
    "welcome": _kind(()),
    "payment_success": _kind(("amount", "order_number")),
    "payment_failed": _kind(("amount",)),
    "payment_refunded": _kind(("amount", "refunded_total")),
    "wallet_credited": _kind(("coins", "balance")),
}
_FIELDS: dict[Channel, tuple[str, ...]] = {"push": ("title", "body"), "sms": ("body",)}
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


class TemplateError(ValueError):
    """A call that does not give a kind exactly its variables: a bug, never a blank."""


@dataclass(frozen=True)
class Rendered:
    title: str | None  # None for SMS
    body: str
    locale: str  # the locale whose words these are


@dataclass(frozen=True)
class _Template:
    title: str | None
    body: str


@dataclass(frozen=True)
class _Locale:
    grouping: Grouping
    templates: Mapping[tuple[str, Channel], _Template]


class TextTemplates:
    def __init__(self, locales: Mapping[str, _Locale]) -> None:
        self._locales = dict(locales)

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(sorted(self._locales))

    def chain(self, locale: str | None) -> tuple[str, ...]:
        """The shipped locales to look in, best first; always ends in en-IN."""
        wanted = _normalise(locale)
        language = wanted.split("-")[0]
        found = [wanted] if wanted in self._locales else []
        found += [name for name in self.locales if name.split("-")[0] == language]
        return tuple(dict.fromkeys([*found, FALLBACK]))

    def render(
        self, kind: str, channel: Channel, locale: str | None, variables: Mapping[str, Value]
    ) -> Rendered:
        """The kind's words on `channel` for a recipient of `locale` (None: unknown)."""
        spec = KINDS.get(kind)
        if spec is None or channel not in spec.channels:
            raise TemplateError(f"no {channel} template of kind {kind!r}")
        if set(variables) != spec.variables:
            given, wanted = sorted(variables), sorted(spec.variables)
            raise TemplateError(f"{kind} takes {wanted}, was given {given}")
        for name in self.chain(locale):
            found = self._locales[name].templates.get((kind, channel))
            if found is not None:
                grouping = self._locales[name].grouping
                values = {k: _text(v, grouping) for k, v in variables.items()}
                title = found.title.format_map(values) if found.title is not None else None
                return Rendered(title, found.body.format_map(values), name)
        raise TemplateError(f"no {channel} template of kind {kind!r}")  # load() prevents it


def load(directory: Path | None = None) -> TextTemplates:
    """Every locale file of `directory` (the shipped ones by default), each template checked;
    a problem is a SettingsError of one line naming the file, the template and what is wrong."""
    directory = directory or SHIPPED
    files = sorted(directory.glob("*.toml"))
    locales = {path.stem: _read(path) for path in files}
    base = locales.get(FALLBACK)
    if base is None:
        _refuse(f"{directory} has no {FALLBACK}.toml, the locale every other falls back to")
    for kind, spec in KINDS.items():
        for channel in sorted(spec.channels):
            if (kind, channel) not in base.templates:
                _refuse(f"{FALLBACK}.toml has no [{kind}.{channel}] template")
    return TextTemplates(locales)


def _read(path: Path) -> _Locale:
    where = path.name
    if not _LOCALE.match(path.stem):
        _refuse(f"{where}: the file name is not a locale such as en-IN")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        _refuse(f"{where} is not valid TOML: {error}")
    money = document.pop("money", {})
    grouping = money.get("grouping", "western") if isinstance(money, dict) else money
    if grouping not in get_args(Grouping):
        _refuse(f"{where}: [money] grouping must be western or indian, not {grouping!r}")
    templates: dict[tuple[str, Channel], _Template] = {}
    for kind, channels in document.items():
        spec = KINDS.get(kind)
        if spec is None or not isinstance(channels, dict):
            _refuse(f"{where}: [{kind}] is not a message kind (kinds: {', '.join(KINDS)})")
        for channel, fields in channels.items():
            if channel not in spec.channels or not isinstance(fields, dict):
                _refuse(f"{where}: [{kind}.{channel}] is not a channel {kind} is sent on")
            here = f"{where} [{kind}.{channel}]"
            templates[(kind, channel)] = _template(here, channel, spec, fields)
    return _Locale(cast(Grouping, grouping), templates)


def _template(where: str, channel: Channel, spec: Kind, fields: dict[str, object]) -> _Template:
    wanted = _FIELDS[channel]
    for name, text in fields.items():
        if name not in wanted or not isinstance(text, str) or not text.strip():
            _refuse(f"{where}: {name} is not one of {', '.join(wanted)} with a text")
        _check(f"{where} {name}", text, spec)
    for name in wanted:
        if name not in fields:
            _refuse(f"{where}: {name} is missing")
    title = fields.get("title")
    return _Template(str(title) if title is not None else None, str(fields["body"]))


def _check(where: str, text: str, spec: Kind) -> None:
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as error:
        _refuse(f"{where}: {error}")
    for _, name, spec_text, conversion in parts:
        if name is None:
            continue
        if name not in spec.variables:
            has = ", ".join(sorted(spec.variables)) or "none"
            _refuse(f"{where} uses {{{name}}}, which it is not given (its variables: {has})")
        if spec_text or conversion:
            _refuse(f"{where}: {{{name}}} takes no format spec; values come formatted")


def _refuse(problem: str) -> NoReturn:
    raise SettingsError(f"configuration error: notify templates: {problem}")


def _normalise(locale: str | None) -> str:
    """'hi_in' -> 'hi-IN', 'HI' -> 'hi'; nothing usable -> en-IN."""
    parts = (locale or "").replace("_", "-").split("-")
    if not parts[0].isalpha():
        return FALLBACK
    region = [parts[1].upper()] if len(parts) > 1 and parts[1] else []
    return "-".join([parts[0].lower(), *region])


def _text(value: Value, grouping: Grouping) -> str:
    if isinstance(value, Money):
        return money_text(value, grouping)
    if isinstance(value, int):
        return _grouped(f"{value:,}", grouping)
    return value


def money_text(money: Money, grouping: Grouping) -> str:
    """'₹1,234.50'; Indian grouping puts lakhs and crores apart: '₹12,34,567.50'."""
    western = money.format()
    digits = f"{money.to_decimal():,.{exponent(money.currency)}f}"
    return western.removesuffix(digits) + _grouped(digits, grouping)


def _grouped(western: str, grouping: Grouping) -> str:
    if grouping == "western":
        return western
    sign, plain = ("-", western[1:]) if western.startswith("-") else ("", western)
    whole, dot, fraction = plain.replace(",", "").partition(".")
    head, tail = whole[:-3], whole[-3:]
    pairs = [head[max(i - 2, 0) : i] for i in range(len(head), 0, -2)][::-1]
    return sign + ",".join([*pairs, tail] if head else [tail]) + dot + fraction
