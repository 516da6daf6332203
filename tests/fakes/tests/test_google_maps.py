"""The real googlemaps SDK against GoogleMapsFake."""

from __future__ import annotations

from collections.abc import Iterator

import googlemaps
import pytest
import requests
from googlemaps.exceptions import ApiError, HTTPError, Timeout, TransportError

from rtmn_fakes.google_maps import GoogleMapsFake
from rtmn_fakes.payloads import load

KEY = "AIzaSyTestKeyForTheFake0000000000000000"


@pytest.fixture
def fake() -> Iterator[GoogleMapsFake]:
    with GoogleMapsFake(KEY) as fake:
        yield fake


def client(fake: GoogleMapsFake, key: str = KEY, **options: object) -> googlemaps.Client:
    settings: dict[str, object] = {"timeout": 5, "retry_timeout": 5, **options}
    return googlemaps.Client(key=key, base_url=fake.url, **settings)


def test_unprogrammed_address_geocodes_to_a_stable_place_in_india(fake: GoogleMapsFake) -> None:
    [first] = client(fake).geocode("12 MG Road, Bengaluru", region="in")
    [again] = client(fake).geocode("12  mg road, bengaluru")

    published = load("google_maps", "geocode.ok.1600_amphitheatre.json")["results"][0]
    assert set(first) == set(published)
    assert first["formatted_address"] == "12 MG Road, Bengaluru"
    assert 8 <= first["geometry"]["location"]["lat"] <= 35
    assert 68 <= first["geometry"]["location"]["lng"] <= 97
    assert again["geometry"] == first["geometry"]
    assert fake.geocode_count("12 MG Road, Bengaluru") == 2
    sent = fake.requests[0]
    assert sent.query["region"] == "in"
    assert sent.query["key"] == KEY


def test_programmed_result_and_statuses(fake: GoogleMapsFake) -> None:
    fake.set_geocode("Nowhere", "ZERO_RESULTS")
    fake.set_geocode("Bad", "INVALID_REQUEST")
    fake.set_geocode("Broken", "UNKNOWN_ERROR")
    fake.set_geocode("Home", result={"formatted_address": "Home, Pune", "place_id": "p1"})
    maps = client(fake)

    assert maps.geocode("Nowhere") == []
    assert maps.geocode("home") == [{"formatted_address": "Home, Pune", "place_id": "p1"}]
    with pytest.raises(ApiError) as invalid:
        maps.geocode("Bad")
    with pytest.raises(ApiError) as unknown:
        maps.geocode("Broken")

    assert invalid.value.status == "INVALID_REQUEST"
    assert unknown.value.status == "UNKNOWN_ERROR"


def test_over_query_limit_once_is_retried_by_the_sdk(fake: GoogleMapsFake) -> None:
    fake.set_geocode("Busy", "OVER_QUERY_LIMIT", times=1)

    [result] = client(fake).geocode("Busy")

    assert result["formatted_address"] == "Busy"
    assert [r.json for r in fake.requests] == [None, None]
    assert fake.geocode_count("Busy") == 2


def test_over_query_limit_without_sdk_retry_surfaces_and_daily_limit_is_an_api_error(
    fake: GoogleMapsFake,
) -> None:
    fake.set_geocode("Busy", "OVER_QUERY_LIMIT")
    fake.set_geocode("Capped", "OVER_DAILY_LIMIT")
    maps = client(fake, retry_over_query_limit=False)

    with pytest.raises(ApiError) as busy:
        maps.geocode("Busy")
    with pytest.raises(ApiError) as capped:
        maps.geocode("Capped")

    assert (busy.value.status, busy.value.message) == ("OVER_QUERY_LIMIT", "Please wait.")
    assert capped.value.status == "OVER_DAILY_LIMIT"


def test_wrong_or_missing_key_is_request_denied(fake: GoogleMapsFake) -> None:
    with pytest.raises(ApiError) as denied:
        client(fake, key="AIzaWrongKey").geocode("Home")

    assert denied.value.status == "REQUEST_DENIED"
    assert denied.value.message == "The provided API key is invalid. "
    body = requests.get(
        f"{fake.url}/maps/api/geocode/json", params={"address": "x"}, timeout=5
    ).json()
    assert (body["status"], body["results"]) == ("REQUEST_DENIED", [])


def test_missing_address_is_the_published_invalid_request(fake: GoogleMapsFake) -> None:
    body = requests.get(f"{fake.url}/maps/api/geocode/json", params={"key": KEY}, timeout=5).json()

    assert body == load("google_maps", "geocode.invalid_request.json")


def test_components_only_query_uses_the_country(fake: GoogleMapsFake) -> None:
    [result] = client(fake).geocode(components={"postal_code": "560001", "country": "IN"})

    assert result["address_components"][-1]["short_name"] == "IN"


def test_transport_faults(fake: GoogleMapsFake) -> None:
    fake.fail_next(1, status=502)
    fake.delay_next(1, 1.0)
    fake.drop_next(1)
    maps = client(fake, timeout=0.3, retry_timeout=2)

    with pytest.raises(HTTPError):
        maps.geocode("Home")
    with pytest.raises(Timeout):
        maps.geocode("Home")
    with pytest.raises(TransportError):
        maps.geocode("Home")


def test_key_must_look_like_a_google_key() -> None:
    with pytest.raises(ValueError, match="AIza"):
        GoogleMapsFake("not-a-key")
