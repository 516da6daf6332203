"""Issue 20's faults, on three RabbitMQ nodes with every worker twice: for each, 500 payments go
in while it happens, and afterwards every payment has exactly one wallet credit, one mail and
one push, every outbox is drained and no message is left in a queue but the dead letters."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter

import pytest
from cluster_kit import SPECS, TAKEOVER
from faults_kit import EFFECTS, PAYMENT_QUEUES, Harness, Stream, effects
from test_faults import N, captured_at_least, exactly_once, run

from rtmn_shared.testing.rabbit_cluster import Node, RabbitCluster
from rtmn_shared.testing.waiting import wait_for

ROW_TIMEOUT = 900  # 500 payments, a fault, the drain; the machine is shared


async def landed(h: Harness, stream: Stream) -> int:
    return sum((await effects(h.database_url, h.providers, stream)).per_effect(stream).values())


async def effects_flow_again(h: Harness, stream: Stream, since: float, before: int) -> None:
    """Until three more effects landed than when the fault struck (`before`), or all of them:
    the fault's stand-in serves."""
    goal = min(before + 3, len(EFFECTS) * len(stream.payments))

    async def grew() -> bool:
        return await landed(h, stream) >= goal

    await wait_for(grew, timeout=120, interval=0.1, message=f"{stream.label}: effects again")
    TAKEOVER[stream.label] = time.monotonic() - since


def test_every_quorum_queue_of_the_payment_path_has_a_replica_on_every_node(
    harness: Harness, rabbit: RabbitCluster
) -> None:
    members = rabbit.members(harness.vhost)
    everyone = sorted(n.name for n in rabbit.nodes)
    assert {q: members[q] for q in PAYMENT_QUEUES} == dict.fromkeys(PAYMENT_QUEUES, everyone)


@pytest.mark.timeout(ROW_TIMEOUT)
async def test_the_node_leading_the_payment_queues_sigkilled_then_restarted(
    harness: Harness, rabbit: RabbitCluster
) -> None:
    leaders = Counter(rabbit.leader(harness.vhost, q).name for q in PAYMENT_QUEUES)
    doomed = next(n for n in rabbit.nodes if n.name == leaders.most_common(1)[0][0])
    label = f"leader node {doomed.name.split('@')[0]} SIGKILL + restart"

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        before, struck = await landed(harness, stream), time.monotonic()
        await asyncio.to_thread(rabbit.kill, doomed)
        try:
            await effects_flow_again(harness, stream, struck, before)
            await captured_at_least(stream, N // 2)
        finally:
            await asyncio.to_thread(_restart, rabbit, doomed)

    _, outcome = await run(harness, label, fault, note=f"led {leaders[doomed.name]}/3 queues")
    exactly_once(outcome, harness)
    assert sorted(rabbit.running()) == sorted(n.name for n in rabbit.nodes)


@pytest.mark.timeout(ROW_TIMEOUT)
async def test_the_publishing_relay_sigkilled_and_its_standby_takes_over(
    harness: Harness,
) -> None:
    relays = [
        name for name, spec in SPECS.items() if spec.service == "payments" and "relay" in spec.roles
    ]
    publishing = [r for r in relays if "standing by" not in harness.processes.output(r)]
    assert len(publishing) == 1, f"exactly one of {relays} publishes"
    doomed, standby = publishing[0], next(r for r in relays if r != publishing[0])
    label = f"{doomed} (publishing) SIGKILL"

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        harness.processes.kill(doomed, signal.SIGKILL)
        struck = time.monotonic()
        try:
            await wait_for(
                lambda: "took over the payments outbox" in harness.processes.output(standby),
                timeout=60,
                interval=0.05,
                message=f"{standby} took over",
            )
            TAKEOVER[label] = time.monotonic() - struck
            await captured_at_least(stream, N // 2)
        finally:
            harness.processes.start(doomed)  # back, now as the standby
            await harness.processes.wait_ready([doomed])

    _, outcome = await run(harness, label, fault, note=f"{standby} took over")
    exactly_once(outcome, harness)


@pytest.mark.timeout(ROW_TIMEOUT)
async def test_one_of_two_consumer_processes_sigkilled_mid_handler(harness: Harness) -> None:
    # Wallet's: its effect commits with its inbox row, so a handler cut short is redone once.
    # (notify's mails and pushes are not: a SIGKILL after SendGrid or FCM accepted a send and
    # before its record commits sends it again on redelivery; neither provider dedupes.)
    doomed = "wallet-consumers-1"
    label = f"{doomed} (of 2) SIGKILL mid-handler"

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        before, struck = await landed(harness, stream), time.monotonic()
        harness.processes.kill(doomed, signal.SIGKILL)
        try:
            await effects_flow_again(harness, stream, struck, before)
            await captured_at_least(stream, N // 2)
        finally:
            harness.processes.start(doomed)
            await harness.processes.wait_ready([doomed])

    _, outcome = await run(harness, label, fault, note="wallet-consumers-2 carried on")
    exactly_once(outcome, harness)


@pytest.mark.timeout(ROW_TIMEOUT)
async def test_a_node_cut_off_by_a_partition_pauses_and_rejoins_when_it_heals(
    harness: Harness, rabbit: RabbitCluster
) -> None:
    cut = rabbit.nodes[-1]
    others = [n.name for n in rabbit.nodes if n is not cut]
    label = f"partition of {cut.name.split('@')[0]}, healed"

    async def fault(stream: Stream) -> None:
        await captured_at_least(stream, N // 4)
        before, struck = await landed(harness, stream), time.monotonic()
        await asyncio.to_thread(rabbit.cut_off, cut)
        try:
            await wait_for(
                lambda: sorted(rabbit.running(rabbit.nodes[0])) == sorted(others),
                timeout=60,
                interval=0.5,
                message=f"the majority sees {cut.name} gone",
            )
            await effects_flow_again(harness, stream, struck, before)
            await captured_at_least(stream, N // 2)
        finally:
            await asyncio.to_thread(rabbit.heal, cut)
            await asyncio.to_thread(rabbit.wait_running, len(rabbit.nodes), 180)

    _, outcome = await run(harness, label, fault, note="pause_minority; cookie cut by rabbitmqctl")
    exactly_once(outcome, harness)


def _restart(rabbit: RabbitCluster, node: Node) -> None:
    rabbit.start(node)
    rabbit.wait_started(node)
    rabbit.wait_running(len(rabbit.nodes))


def test_the_gateway_spread_the_payments_over_both_api_processes(harness: Harness) -> None:
    served = Counter(
        json.loads(line).get("upstream")
        for line in (harness.processes.logs / "gateway" / "gateway.log").read_text().splitlines()
        if line.startswith("{") and "/api/payments/create" in line
    )
    apis = harness.processes.api_addresses("payments")
    assert len(apis) == 2
    assert all(served[address] >= N // 4 for address in apis), (apis, served)
