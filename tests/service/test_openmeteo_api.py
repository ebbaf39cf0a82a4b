"""GET /v1/forecast as Open-Meteo answers: parameters, units, timezones, daily, current, FlatBuffers.

Through TestClient and the tiny bundle (air in K, z500 in m; runs 2013-01-01T06 .. 2013-01-02T06).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient
from openmeteo_sdk.Aggregation import Aggregation
from openmeteo_sdk.Unit import Unit
from openmeteo_sdk.Variable import Variable
from openmeteo_sdk.WeatherApiResponse import WeatherApiResponse

from tests.fixtures.bundle import TINY_LAT, TINY_LON

LAT, LON = float(TINY_LAT[3]), float(TINY_LON[5]) - 360.0  # a grid point: 42.5 N, 117.5 W
POINT = {"latitude": LAT, "longitude": LON, "cell_selection": "nearest"}
RUN = "2013-01-02T06:00"


def get(client: TestClient, **params) -> dict:
    response = client.get("/v1/forecast", params={**POINT, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_repeated_lists_unknown_parameters_and_best_match_share_one_answer(client: TestClient) -> None:
    services = client.app.state.services
    commas = client.get("/v1/forecast", params={**POINT, "hourly": "air,z500"})
    repeated = client.get("/v1/forecast", params=[*POINT.items(), ("hourly", "air"), ("hourly", "z500")])
    noise = client.get(
        "/v1/forecast",
        params={**POINT, "hourly": "air,z500", "models": "best_match", "x": "1", "apikey": "k"},
    )
    assert commas.content == repeated.content == noise.content
    assert list(commas.json()["hourly"]) == ["time", "air", "z500"]
    assert len(services.responses) == 1 and services.responses.hits == 2


def test_head_answers_the_headers_without_a_body(client: TestClient) -> None:
    full = client.get("/v1/forecast", params={**POINT, "hourly": "air"})
    for _ in range(2):  # from the route, then from the cached path
        head = client.head("/v1/forecast", params={**POINT, "hourly": "air"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["etag"] == full.headers["etag"]
        assert int(head.headers["content-length"]) == len(full.content)


def test_fahrenheit_timezone_and_daily_min_max(client: TestClient) -> None:
    celsius = get(client, hourly="temperature_2m", timezone="America/Los_Angeles", past_days=1)
    body = get(
        client,
        hourly="temperature_2m",
        daily="temperature_2m_max,temperature_2m_min,temperature_2m_mean",
        timezone="America/Los_Angeles",
        temperature_unit="fahrenheit",
        past_days=1,
    )
    assert (body["utc_offset_seconds"], body["timezone_abbreviation"]) == (-8 * 3600, "PST")
    assert (
        body["hourly_units"]["temperature_2m"] == "°F" and body["daily_units"]["temperature_2m_max"] == "°F"
    )
    c, f = (
        np.array(celsius["hourly"]["temperature_2m"], float),
        np.array(body["hourly"]["temperature_2m"], float),
    )
    np.testing.assert_allclose(f, c * 9 / 5 + 32, atol=0.02, equal_nan=True)
    # The run (06 UTC) is 22:00 on 2013-01-01 in Los Angeles: the answer starts a day before, at local midnight.
    assert body["hourly"]["time"][0] == "2012-12-31T00:00" and len(body["hourly"]["time"]) == 8 * 24
    assert body["daily"]["time"][:2] == ["2012-12-31", "2013-01-01"]
    # 2012-12-31 begins before the first initial state (2013-01-01T00 UTC): the day is null, not partial.
    assert body["daily"]["temperature_2m_max"][0] is None
    day = np.array(body["hourly"]["temperature_2m"][24:48], float)
    assert body["daily"]["temperature_2m_max"][1] == pytest.approx(day.max(), abs=0.011)
    assert body["daily"]["temperature_2m_min"][1] == pytest.approx(day.min(), abs=0.011)
    assert body["daily"]["temperature_2m_mean"][1] == pytest.approx(day.mean(), abs=0.011)
    auto = get(client, hourly="temperature_2m", timezone="auto", longitude=-121.0)  # northern California
    assert (auto["timezone"], auto["utc_offset_seconds"]) == ("America/Los_Angeles", -28800)
    mountain = get(client, hourly="temperature_2m", timezone="auto")  # 117.5 W: Malheur County, Oregon
    assert (mountain["timezone"], mountain["timezone_abbreviation"]) == ("America/Boise", "MST")


def test_past_hours_are_the_analyses_and_current_is_the_run(client: TestClient, initial_states_nc) -> None:
    body = get(client, hourly="air", current="air,temperature_2m", past_days=1, forecast_days=1)
    times = body["hourly"]["time"]
    with xr.open_dataset(initial_states_nc) as states:
        for stamp in ("2013-01-01T06:00", "2013-01-01T12:00", RUN):
            expected = float(states["air"].sel(time=stamp).isel(lat=3, lon=5))
            assert body["hourly"]["air"][times.index(stamp)] == pytest.approx(expected, abs=0.006)
    assert body["current"]["time"] == RUN and body["current"]["interval"] == 900
    assert body["current"]["air"] == body["hourly"]["air"][times.index(RUN)]
    assert body["current"]["temperature_2m"] == pytest.approx(body["current"]["air"] - 273.15, abs=0.011)


def test_windows_days_zero_dates_and_cells(client: TestClient) -> None:
    assert get(client, hourly="air", forecast_days=0)["hourly"] == {"time": [], "air": []}
    dated = get(client, hourly="air", start_date="2013-01-02", end_date="2013-01-03")
    assert dated["hourly"]["time"][0] == "2013-01-02T00:00" and len(dated["hourly"]["time"]) == 48
    nearest = get(client, hourly="air")
    for cell in ("land", "sea"):
        assert get(client, hourly="air", cell_selection=cell)["hourly"] == nearest["hourly"]
    assert get(client, hourly="air", elevation=1234)["elevation"] == 1234.0
    assert nearest["elevation"] == 0.0


def test_known_names_the_model_lacks_are_null_and_legacy_names_are_echoed(client: TestClient) -> None:
    body = get(
        client,
        hourly="wind_speed_10m,precipitation,weathercode,geopotential_height_500hPa",
        daily="precipitation_sum,winddirection_10m_dominant",
        current_weather="true",
        forecast_days=1,
    )
    assert set(body["hourly"]["wind_speed_10m"]) == {None} and set(body["hourly"]["weathercode"]) == {None}
    assert body["hourly_units"]["wind_speed_10m"] == "km/h" and body["hourly_units"]["precipitation"] == "mm"
    assert None not in body["hourly"]["geopotential_height_500hPa"]
    assert body["daily"]["precipitation_sum"] == [None]
    weather = body["current_weather"]
    assert (
        weather["time"] == RUN and weather["windspeed"] is None and isinstance(weather["temperature"], float)
    )


def test_flatbuffers_carry_every_location_as_the_sdk_reads_them(client: TestClient) -> None:
    params = {
        "latitude": f"{LAT},40",
        "longitude": f"{LON},-120",
        "hourly": "temperature_2m,geopotential_height_500hPa,air",
        "daily": "temperature_2m_max",
        "current": "temperature_2m",
        "timezone": "Europe/Berlin",
    }
    as_json = client.get("/v1/forecast", params=params).json()
    raw = client.get("/v1/forecast", params={**params, "format": "flatbuffers"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/octet-stream"
    data, position, decoded = raw.content, 0, []
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "little")
        decoded.append(WeatherApiResponse.GetRootAs(data, position + 4))
        position += 4 + length
    assert len(decoded) == 2
    for k, (message, body) in enumerate(zip(decoded, as_json, strict=True)):
        assert message.LocationId() == k and message.Timezone().decode() == "Europe/Berlin"
        assert message.UtcOffsetSeconds() == 3600 and message.Latitude() == pytest.approx(body["latitude"])
        hourly = message.Hourly()
        assert hourly.Interval() == 3600 and hourly.VariablesLength() == 3
        t2m, z500, air = (hourly.Variables(i) for i in range(3))
        assert (t2m.Variable(), t2m.Altitude(), t2m.Unit()) == (Variable.temperature, 2, Unit.celsius)
        assert (z500.Variable(), z500.PressureLevel()) == (Variable.geopotential_height, 500)
        assert (air.Variable(), air.Unit()) == (Variable.undefined, Unit.kelvin)
        np.testing.assert_allclose(t2m.ValuesAsNumpy(), body["hourly"]["temperature_2m"], atol=0.006)
        first = np.datetime64(body["hourly"]["time"][0]) - np.timedelta64(3600, "s")  # Berlin is UTC+1
        assert hourly.Time() == first.astype("datetime64[s]").astype(int)
        assert hourly.TimeEnd() - hourly.Time() == 3600 * len(body["hourly"]["time"])
        daily = message.Daily().Variables(0)
        assert daily.Aggregation() == Aggregation.maximum
        np.testing.assert_allclose(daily.ValuesAsNumpy(), body["daily"]["temperature_2m_max"], atol=0.006)
        assert message.Current().Variables(0).Value() == pytest.approx(
            body["current"]["temperature_2m"], abs=0.006
        )


def test_every_advertised_run_is_answerable(client: TestClient) -> None:
    model = client.get("/v1/models").json()["default"]
    runs = client.get(f"/v1/models/{model}").json()["runs"]
    for run in (runs["first"], runs["latest"]):
        body = get(client, hourly="air", run=run, forecast_hours=12)
        assert body["run"] == run and None not in body["hourly"]["air"]
