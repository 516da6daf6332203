"""A broker of several nodes in one AMQP_URL (comma-separated): every client of the suite takes
the first address that answers and moves to another when its node goes. Each "node" here is a
cuttable relay (rtmn_shared/testing/outage.py) in front of the one real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from demo_events import effects, emit, recorder, relay, start
from rtmn_shared.cli.dlq import dead_letters
from rtmn_shared.db import Pool
from rtmn_shared.events import brokers
from rtmn_shared.events.publishers import login_of
from rtmn_shared.logs import redact_url
from rtmn_shared.settings import CommonSettings, SettingsError, load_settings, service_logins
from rtmn_shared.testing.cluster import free_port
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.outage import Outage, outage_in_front_of
from rtmn_shared.testing.plugin import Background
from rtmn_shared.testing.waiting import wait_for
from rtmn_shared.web.app import Readiness


def at_port(url: str, port: int) -> str:
    """`url` (login and vhost kept) at another port of the loopback."""
    parts = urlsplit(url)
    login = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{login}@127.0.0.1:{port}"))


def nowhere(suite: Suite) -> str:
    """An address of the list whose node is dead: nothing listens there."""
    return at_port(suite.amqp_url, free_port())


@pytest.fixture
async def nodes(suite: Suite) -> AsyncIterator[list[Outage]]:
    broker = urlsplit(suite.amqp_url)
    assert broker.hostname is not None
    assert broker.port is not None
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(outage_in_front_of(broker.hostname, broker.port))
            for _ in range(2)
        ]


def test_an_address_list_is_split_and_a_single_address_kept() -> None:
    assert brokers.addresses("amqp://a:1/v, amqp://b:2/v,") == ["amqp://a:1/v", "amqp://b:2/v"]
    assert brokers.addresses("amqp://u:p%2Cq@svc/") == ["amqp://u:p%2Cq@svc/"]
    with pytest.raises(ValueError, match="no broker address"):
        brokers.addresses(" , ")


def test_each_address_logs_in_as_the_service_and_no_password_reaches_a_log() -> None:
    environ = {"AMQP_URL": "amqp://node1:5681/v,amqp://node2:5682/v", "AMQP_PASSWORD": "p,w"}
    listed = service_logins("wallet", environ)["amqp_url"]
    assert listed == "amqp://rtmn_wallet:p%2Cw@node1:5681/v,amqp://rtmn_wallet:p%2Cw@node2:5682/v"
    assert login_of(listed) == "rtmn_wallet"
    assert (
        redact_url(listed)
        == "amqp://rtmn_wallet:***@node1:5681/v,amqp://rtmn_wallet:***@node2:5682/v"
    )


def test_every_address_of_amqp_url_is_checked_at_start(suite: Suite) -> None:
    key = suite.public_key
    ok = load_settings(CommonSettings, jwt_public_key=key, amqp_url="amqp://a/,amqp://b:5682/")
    assert ok.amqp_url == "amqp://a/,amqp://b:5682/"
    with pytest.raises(SettingsError, match="AMQP_URL URL scheme should be 'amqp' or 'amqps'"):
        load_settings(CommonSettings, jwt_public_key=key, amqp_url="amqp://a/,http://b/")


async def test_a_dead_first_address_is_passed_over_by_every_kind_of_client(suite: Suite) -> None:
    listed = f"{nowhere(suite)},{suite.amqp_url}"
    for _ in range(4):  # each connect starts at a random address: both orders get tried
        connection = await brokers.connect(listed)
        await connection.close()
    assert await Readiness(amqp_url=listed).check() == {"broker": "ok"}
    ops = f"{nowhere(suite)},{suite.amqp_url_as('ops')}"
    with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):  # the broker's answer
        await dead_letters(ops, "nobody.here", 10, replay=False, logins=suite.logins)


async def test_no_live_address_is_an_os_error_that_names_how_many_were_tried(
    suite: Suite,
) -> None:
    with pytest.raises(brokers.NoBrokerError, match="none of 2 broker addresses"):
        await brokers.connect(f"{nowhere(suite)},{nowhere(suite)}", timeout=2)


async def test_relay_and_consumers_move_to_a_live_node_and_lose_nothing(
    clean_demo: Pool, suite: Suite, background: Background, nodes: list[Outage]
) -> None:
    listed = ",".join(at_port(suite.amqp_url, node.port) for node in nodes)
    await start(background, clean_demo, suite, recorder("ledger"), group="moving", amqp_url=listed)
    background(relay(clean_demo, suite, amqp_url=listed).run())
    sent = await emit(clean_demo, 50)
    await wait_for(lambda: _applied(clean_demo, 50), message="50 through either node")
    # Each node dies in turn (the other one back): whoever was on it moves, with no operator.
    for dying, back in ((nodes[0], nodes[1]), (nodes[1], nodes[0])):
        back.restore()
        dying.cut()
        sent += await emit(clean_demo, 50)
        total = len(sent)
        await wait_for(
            partial(_applied, clean_demo, total),
            timeout=60,
            message=f"{total} applied after a node died",
        )
    assert sorted(await effects(clean_demo, "ledger")) == sorted(sent)


async def _applied(pool: Pool, count: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) >= $1 FROM effects", count))
