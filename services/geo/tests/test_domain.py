"""Pure functions: normalisation, haversine, coordinate parsing. No I/O."""

from __future__ import annotations

import math

import pytest

from geo.domain import EARTH_RADIUS_KM, LatLng, haversine_km, normalise_address


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("  12, M.G. Road,\tBengaluru ", "12 mg road bengaluru"),
        ("12 MG ROAD BENGALURU", "12 mg road bengaluru"),
        ("St. Mark's Road; #4/1", "st marks road 4 1"),
        ("ＭＧ Road", "mg road"),  # full-width letters fold to ASCII
        ("Straße", "strasse"),  # casefold, not lower
        ("बेंगलुरु, कर्नाटक", "बेंगलुरु कर्नाटक"),  # combining marks are kept
        (" ,;:!? ", ""),
    ],
)
def test_normalise_address(raw: str, key: str) -> None:
    assert normalise_address(raw) == key


def test_haversine_matches_known_distances() -> None:
    one_degree = 2 * math.pi * EARTH_RADIUS_KM / 360
    assert haversine_km(LatLng(0, 0), LatLng(0, 1)) == pytest.approx(one_degree, rel=1e-12)
    assert haversine_km(LatLng(0, 0), LatLng(0, 1)) == pytest.approx(111.195, abs=1e-3)
    # Bengaluru -> Chennai: ~290 km on the ellipsoid; the sphere is within 0.5 %.
    blr, maa = LatLng(12.9716, 77.5946), LatLng(13.0827, 80.2707)
    assert haversine_km(blr, maa) == pytest.approx(290.2, rel=0.005)
    assert haversine_km(blr, maa) == haversine_km(maa, blr)
    assert haversine_km(blr, blr) == 0
    assert haversine_km(LatLng(0, 0), LatLng(0, 180)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert haversine_km(LatLng(10, 179.9), LatLng(10, -179.9)) < 25  # across the antimeridian


@pytest.mark.parametrize(
    "text", ["91,0", "0,181", "-90.0001,0", "nan,0", "inf,1", "1", "a,b", "1,2,3", ""]
)
def test_bad_coordinates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        LatLng.parse(text)


def test_coordinates_parse_at_the_edges() -> None:
    assert LatLng.parse(" -90 , 180 ") == LatLng(-90, 180)
