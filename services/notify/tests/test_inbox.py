"""The in-app inbox: the caller's pushes newest first, cursor paged, read state and unread count;
a suppressed push never shows."""

from __future__ import annotations

from notify_testkit import Publish, add_devices, in_daytime, unique

from rtmn_shared.events.catalogue import NotificationRequested
from rtmn_shared.testing.infra import Suite
from rtmn_shared.testing.running import RunningService
from rtmn_shared.testing.waiting import wait_for

INBOX = "/api/notify/inbox"


async def test_the_inbox_pages_newest_first_and_counts_what_is_unread(
    notify: RunningService, suite: Suite, publish: Publish
) -> None:
    pool = notify.pool
    user = unique("user")
    auth = suite.bearer(user)
    await add_devices(pool, user, unique("tok"))
    await in_daytime(pool, user)
    for n in range(5):
        await publish(
            NotificationRequested(
                request_id=unique("news"),
                user_ids=[user],
                title=f"News {n}",
                message="m",
                category="account",
            )
        )
        await wait_for(
            lambda n=n: pool.fetchval(
                "SELECT count(*) = $2 FROM deliveries WHERE user_id = $1 AND status = 'sent'",
                user,
                n + 1,
            ),
            message=f"push {n}",
        )

    first = await (await notify.client.get(INBOX, params={"limit": "2"}, headers=auth)).json()
    pages = [first]
    while pages[-1]["next_cursor"]:
        params = {"limit": "2", "cursor": pages[-1]["next_cursor"]}
        pages.append(await (await notify.client.get(INBOX, params=params, headers=auth)).json())
    titles = [i["title"] for p in pages for i in p["items"]]
    newest = first["items"][0]["id"]
    read = await notify.client.post(f"{INBOX}/{newest}/read", headers=auth)
    again = await notify.client.post(f"{INBOX}/{newest}/read", headers=auth)
    someone_else = await notify.client.post(
        f"{INBOX}/{newest}/read", headers=suite.bearer(unique("user"))
    )
    after = await (await notify.client.get(INBOX, headers=auth)).json()
    bad_cursor = await notify.client.get(INBOX, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=auth)

    assert titles == ["News 4", "News 3", "News 2", "News 1", "News 0"]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert first["unread"] == 5
    assert (read.status, again.status, someone_else.status) == (204, 204, 404)
    assert after["unread"] == 4
    assert [i["read"] for i in after["items"]] == [True, False, False, False, False]
    assert (bad_cursor.status, bad_cursor.content_type) == (400, "application/problem+json")


async def test_a_suppressed_push_is_not_in_the_inbox(
    notify: RunningService, suite: Suite, publish: Publish
) -> None:
    pool = notify.pool
    user = unique("user")
    await in_daytime(pool, user)
    await notify.client.put(
        "/api/notify/preferences",
        json={"preferences": [{"category": "promotional", "channel": "push", "enabled": False}]},
        headers=suite.bearer(user),
    )
    await publish(
        NotificationRequested(request_id=unique("sale"), user_ids=[user], title="Sale", message="m")
    )
    await wait_for(
        lambda: pool.fetchval(
            "SELECT true FROM deliveries WHERE user_id = $1 AND status = 'suppressed'", user
        ),
        message="the suppressed push",
    )

    page = await (await notify.client.get(INBOX, headers=suite.bearer(user))).json()

    assert page == {"items": [], "next_cursor": None, "unread": 0}
