"""Push and SMS words per locale: every template checked at start-up, the recipient's locale
chosen with a fallback, money written the locale's way."""

from __future__ import annotations

import shutil
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from notify import templates
from notify.app import build_handlers
from notify.settings import Settings
from notify.templates import KINDS, SHIPPED, TemplateError
from rtmn_shared.money import Money
from rtmn_shared.settings import SettingsError

TEXTS = templates.load()
PAID = {"amount": Money(12_345_650, "INR"), "order_number": "R1001"}


def test_every_kind_has_english_and_hindi_words_on_each_of_its_channels() -> None:
    assert TEXTS.locales == ("en-IN", "hi-IN")
    for kind, spec in KINDS.items():
        for channel in spec.channels:
            variables = dict.fromkeys(spec.variables, 1)
            english = TEXTS.render(kind, channel, "en-IN", variables)
            hindi = TEXTS.render(kind, channel, "hi-IN", variables)
            assert hindi.locale == "hi-IN"
            assert english.body != hindi.body
            assert any("\u0900" <= c <= "\u097f" for c in hindi.body)  # Devanagari
            assert (english.title is None) == (channel == "sms")


def test_the_recipients_locale_chooses_the_words_and_money_is_written_its_way() -> None:
    english = TEXTS.render("payment_success", "push", "en-IN", PAID)
    hindi = TEXTS.render("payment_success", "push", "hi-IN", PAID)

    assert english.title == "Payment Successful"
    assert english.body == "Your payment of ₹123,456.50 for order #R1001 was successful."
    assert hindi.title == "भुगतान सफल"
    assert hindi.body == "ऑर्डर #R1001 के लिए आपका ₹1,23,456.50 का भुगतान सफल रहा।"
    small = TEXTS.render("payment_failed", "sms", "en-IN", {"amount": Money(123_450, "INR")})
    assert "₹1,234.50" in small.body


@pytest.mark.parametrize(
    ("given", "chosen"),
    [
        ("hi-IN", "hi-IN"),
        ("hi", "hi-IN"),
        ("hi_in", "hi-IN"),
        ("HI-in", "hi-IN"),
        ("en-IN", "en-IN"),
        ("en-US", "en-IN"),
        ("fr-FR", "en-IN"),
        ("", "en-IN"),
        (None, "en-IN"),
        ("*", "en-IN"),
    ],
)
def test_a_locale_falls_back_to_its_language_and_then_to_en_in(
    given: str | None, chosen: str
) -> None:
    assert TEXTS.render("welcome", "push", given, {}).locale == chosen


def locales(tmp_path: Path, **files: str) -> Path:
    """The shipped files, with `files` (locale -> TOML text) added or put in their place."""
    for shipped in SHIPPED.glob("*.toml"):
        shutil.copy(shipped, tmp_path / shipped.name)
    for name, text in files.items():
        (tmp_path / f"{name.replace('_', '-')}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_kind_a_locale_leaves_out_is_sent_in_english(tmp_path: Path) -> None:
    partial = '[welcome.push]\ntitle = "मराठी"\nbody = "स्वागत आहे"\n'
    texts = templates.load(locales(tmp_path, mr_IN=partial))

    assert texts.render("welcome", "push", "mr-IN", {}).body == "स्वागत आहे"
    fallback = texts.render("payment_success", "push", "mr-IN", PAID)
    assert (fallback.locale, fallback.title) == ("en-IN", "Payment Successful")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[payment_success.push]\ntitle = "Paid"\nbody = "{amount} for {order_id}"\n',
            "hi-IN.toml [payment_success.push] body uses {order_id}, which it is not given "
            "(its variables: amount, order_number)",
        ),
        ('[welcome.push]\ntitle = "Hi {first_name}"\nbody = "x"\n', "uses {first_name}"),
        ('[payment_success.push]\ntitle = "x"\nbody = "{amount:>10}"\n', "no format spec"),
        ('[payment_success.push]\ntitle = "x"\nbody = "{amount"\n', "[payment_success.push]"),
        ('[payment_success.push]\nbody = "x"\n', "[payment_success.push]: title is missing"),
        ('[payment_success.sms]\ntitle = "x"\nbody = "x"\n', "title is not one of body"),
        ('[payment_success.email]\nbody = "x"\n', "[payment_success.email] is not a channel"),
        ('[order_shipped.push]\ntitle = "x"\nbody = "x"\n', "[order_shipped] is not a message"),
        ("[money]\ngrouping = 'arabic'\n", "grouping must be western or indian"),
        ("money = 3\n", "grouping must be western or indian, not 3"),
        ("[welcome.push\n", "hi-IN.toml is not valid TOML"),
    ],
)
def test_a_template_that_cannot_be_filled_stops_start_up_in_one_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        templates.load(locales(tmp_path, hi_IN=text))

    message = str(refused.value)
    assert problem in message
    assert message.startswith("configuration error: notify templates: ")
    assert "\n" not in message


def test_english_must_have_every_template_the_others_fall_back_to(tmp_path: Path) -> None:
    english = (SHIPPED / "en-IN.toml").read_text(encoding="utf-8")
    without = english.replace("[wallet_credited.sms]", "[wallet_credited.sms_gone]")
    cut = without[: without.index("[wallet_credited.sms_gone]")]

    with pytest.raises(SettingsError, match=r"en-IN\.toml has no \[wallet_credited\.sms\]"):
        templates.load(locales(tmp_path, en_IN=cut))
    (tmp_path / "en-IN.toml").unlink()
    with pytest.raises(SettingsError, match=r"has no en-IN\.toml"):
        templates.load(tmp_path)


def test_a_call_without_its_kinds_variables_is_an_error_never_a_blank() -> None:
    with pytest.raises(TemplateError, match="order_number"):
        TEXTS.render("payment_success", "push", "en-IN", {"amount": Money(100, "INR")})
    with pytest.raises(TemplateError, match="extra"):
        TEXTS.render("welcome", "push", "en-IN", {"extra": "x"})
    with pytest.raises(TemplateError, match="no sms template"):
        TEXTS.render("no_such_kind", "sms", "en-IN", {})


async def test_the_consumers_refuse_to_start_on_a_bad_template(tmp_path: Path) -> None:
    bad = locales(tmp_path, hi_IN='[wallet_credited.push]\ntitle = "x"\nbody = "{coin}"\n')
    key = "-----BEGIN PUBLIC KEY-----\nnot-checked-here\n-----END PUBLIC KEY-----"
    settings = Settings(jwt_public_key=key, notify_templates_dir=bad)  # type: ignore[arg-type]

    async with AsyncExitStack() as stack:
        with pytest.raises(SettingsError) as refused:
            await build_handlers(settings, stack)
    assert str(refused.value) == (
        "configuration error: notify templates: hi-IN.toml [wallet_credited.push] body uses "
        "{coin}, which it is not given (its variables: balance, coins)"
    )
