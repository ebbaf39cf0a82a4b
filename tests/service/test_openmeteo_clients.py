"""Open-Meteo's own clients against a live `fno-forecast serve` of the bundled model, only the base URL changed.

The official Python SDK (`openmeteo-requests`, sync and async, FlatBuffers), the official JavaScript SDK
(npm `openmeteo`, run with node; installed by the test into a cache folder, skipped with the reason when
npm or its registry is not there) and `open-meteo`, the client Home Assistant's open_meteo integration
uses, sending that integration's request. Each must read the bundled model's temperatures, the same
numbers the JSON API gives, in Fahrenheit, in a timezone, with the daily min and max of the local days.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.robustness.liveserver import LiveServer, request_json

LOCATIONS = {"latitude": [40.0, 35.5], "longitude": [-100.0, -90.25]}
REQUEST = {
    **LOCATIONS,
    "hourly": ["temperature_2m", "wind_speed_10m"],
    "daily": ["temperature_2m_max", "temperature_2m_min"],
    "current": ["temperature_2m"],
    "temperature_unit": "fahrenheit",
    "timezone": "America/Chicago",
    "past_days": 1,
}
NPM_FOLDER = Path(os.environ.get("FNO_NPM_CACHE", Path.home() / ".cache" / "fno-forecast" / "npm-openmeteo"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from fno_forecast.bundle import default_bundle_path
    from fno_forecast.initial_states import default_initial_states

    folder = tmp_path_factory.mktemp("openmeteo-live")
    states = folder / "ncep_sample.nc"
    default_initial_states().to_netcdf(states)
    live = LiveServer(default_bundle_path(), states, folder / "store", folder / "server.log")
    live.start()
    yield live
    live.stop()


def as_json(server: LiveServer, params: dict) -> list[dict]:
    query = urllib.parse.urlencode(
        {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in params.items()}
    )
    status, body = request_json(f"{server.url}/v1/forecast?{query}")
    assert status == 200, body
    return body if isinstance(body, list) else [body]


def check_daily_against_hourly(hourly_f: np.ndarray, daily_max: np.ndarray, daily_min: np.ndarray) -> None:
    """Each complete local day's max/min is its 24 hourly values' max/min (the answer starts at midnight)."""
    days = hourly_f[: len(daily_max) * 24].reshape(len(daily_max), 24)
    complete = ~np.isnan(days).any(axis=1)
    assert complete.sum() >= 6
    np.testing.assert_allclose(daily_max[complete], days[complete].max(axis=1), atol=0.02)
    np.testing.assert_allclose(daily_min[complete], days[complete].min(axis=1), atol=0.02)


def check_sdk_responses(responses: list, reference: list[dict]) -> None:
    assert len(responses) == 2
    for response, body in zip(responses, reference, strict=True):
        assert response.Timezone() == b"America/Chicago" and response.UtcOffsetSeconds() == -6 * 3600
        assert response.Latitude() == pytest.approx(body["latitude"], abs=1e-4)
        hourly = response.Hourly()
        temperature, wind = hourly.Variables(0), hourly.Variables(1)
        values = temperature.ValuesAsNumpy()
        np.testing.assert_allclose(values, np.array(body["hourly"]["temperature_2m"], float), atol=0.006)
        assert np.isnan(wind.ValuesAsNumpy()).all()  # the model has no wind: nulls, as Open-Meteo sends them
        daily = response.Daily()
        check_daily_against_hourly(
            values, daily.Variables(0).ValuesAsNumpy(), daily.Variables(1).ValuesAsNumpy()
        )
        assert response.Current().Variables(0).Value() == pytest.approx(
            body["current"]["temperature_2m"], abs=0.006
        )


def _run_in_own_loop(coroutine: Any) -> Any:
    """`asyncio.run` in a thread of its own, as a client application runs it: a test session where an earlier
    test (Playwright's sync API in tests/e2e) keeps an event loop in the main thread must not matter."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_reference_answer_is_the_bundled_model_in_fahrenheit(server: LiveServer) -> None:
    fahrenheit = as_json(server, REQUEST)
    celsius = as_json(server, {**REQUEST, "temperature_unit": "celsius"})
    status, model = request_json(f"{server.url}/v1/models/default")
    assert status == 200 and "sigma level 995" in model["openmeteo_variables"]["temperature_2m"]
    assert fahrenheit[0]["model_sha256"] == model["sha256"]
    f = np.array(fahrenheit[0]["hourly"]["temperature_2m"], float)
    c = np.array(celsius[0]["hourly"]["temperature_2m"], float)
    np.testing.assert_allclose(f, c * 9 / 5 + 32, atol=0.02)
    assert 200 < np.nanmean(c) + 273.15 < 300  # late-February air over the Plains, in kelvin


def test_official_python_sdk_sync_and_async(server: LiveServer) -> None:
    import openmeteo_requests

    reference = as_json(server, REQUEST)
    url = f"{server.url}/v1/forecast"
    check_sdk_responses(openmeteo_requests.Client().weather_api(url, params=dict(REQUEST)), reference)
    responses = _run_in_own_loop(openmeteo_requests.AsyncClient().weather_api(url, params=dict(REQUEST)))
    check_sdk_responses(responses, reference)
    posted = openmeteo_requests.Client().weather_api(url, params=dict(REQUEST), method="POST")
    check_sdk_responses(posted, reference)
    with pytest.raises(openmeteo_requests.OpenMeteoRequestsError, match="longitude"):
        openmeteo_requests.Client().weather_api(url, params={**REQUEST, "longitude": [200, 0]})


JS_SCRIPT = """
import { fetchWeatherApi } from "openmeteo";
const [url, params] = [process.argv[2], JSON.parse(process.argv[3])];
const responses = await fetchWeatherApi(url, params);
console.log(JSON.stringify(responses.map((r) => ({
  timezone: r.timezone(), offset: r.utcOffsetSeconds(), latitude: r.latitude(),
  hourly: Array.from(r.hourly().variables(0).valuesArray()),
  max: Array.from(r.daily().variables(0).valuesArray()),
  min: Array.from(r.daily().variables(1).valuesArray()),
}))));
"""


@pytest.fixture(scope="module")
def openmeteo_npm() -> Path:
    """A folder with the npm `openmeteo` package installed (cached between runs)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run Open-Meteo's JavaScript SDK")
    if not (NPM_FOLDER / "node_modules" / "openmeteo" / "package.json").is_file():
        NPM_FOLDER.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(NPM_FOLDER),
                "openmeteo@1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(
                f"npm could not install openmeteo (registry unreachable?): {done.stderr.strip()[-300:]}"
            )
    (NPM_FOLDER / "fetch.mjs").write_text(JS_SCRIPT)
    return NPM_FOLDER


def test_official_javascript_sdk(server: LiveServer, openmeteo_npm: Path) -> None:
    reference = as_json(server, REQUEST)
    params = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in REQUEST.items()}
    done = subprocess.run(
        ["node", str(openmeteo_npm / "fetch.mjs"), f"{server.url}/v1/forecast", json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == 2
    for result, body in zip(results, reference, strict=True):
        assert (result["timezone"], result["offset"]) == ("America/Chicago", -21600)
        hourly = np.array([np.nan if v is None else v for v in result["hourly"]], float)
        np.testing.assert_allclose(hourly, np.array(body["hourly"]["temperature_2m"], float), atol=0.006)
        check_daily_against_hourly(hourly, np.array(result["max"], float), np.array(result["min"], float))


class BaseUrlSession:
    """An aiohttp session for `open_meteo.OpenMeteo` that sends its requests to the test server.

    The client has Open-Meteo's address written in; this swaps the scheme, host and port and keeps the
    path and query the client built, which is what changing the base URL means for it.
    """

    def __init__(self, session, base: str) -> None:
        self._session = session
        self._base = base
        self.urls: list[str] = []

    async def get(self, url, **kwargs):
        from yarl import URL

        target = URL(self._base).with_path(url.path).with_query(url.query)
        self.urls.append(str(target))
        return await self._session.get(target, **kwargs)


async def home_assistant_forecast(base: str, **request):
    """Home Assistant's OpenMeteoDataUpdateCoordinator._async_update_data, with `request` changed."""
    import aiohttp
    from mashumaro.exceptions import InvalidFieldValue
    from open_meteo import (
        DailyParameters,
        HourlyParameters,
        OpenMeteo,
        OpenMeteoError,
        PrecipitationUnit,
        TemperatureUnit,
        WindSpeedUnit,
    )

    ha = {
        "current_weather": True,
        "daily": [
            DailyParameters.PRECIPITATION_SUM,
            DailyParameters.TEMPERATURE_2M_MAX,
            DailyParameters.TEMPERATURE_2M_MIN,
            DailyParameters.WEATHER_CODE,
            DailyParameters.WIND_DIRECTION_10M_DOMINANT,
            DailyParameters.WIND_SPEED_10M_MAX,
        ],
        "hourly": [
            HourlyParameters.PRECIPITATION,
            HourlyParameters.TEMPERATURE_2M,
            HourlyParameters.WEATHER_CODE,
        ],
        "precipitation_unit": PrecipitationUnit.MILLIMETERS,
        "temperature_unit": TemperatureUnit.CELSIUS,
        "timezone": "UTC",
        "wind_speed_unit": WindSpeedUnit.KILOMETERS_PER_HOUR,
    }
    async with aiohttp.ClientSession() as session:
        routed = BaseUrlSession(session, base)
        client = OpenMeteo(session=routed)  # type: ignore[arg-type]
        try:
            forecast = await client.forecast(latitude=40.0, longitude=-100.0, **{**ha, **request})
        except (InvalidFieldValue, OpenMeteoError) as error:  # what the test expects of the client
            return error, routed.urls
        return forecast, routed.urls


def test_home_assistant_client_with_home_assistants_request(server: LiveServer) -> None:
    from open_meteo import DailyParameters, HourlyParameters, TemperatureUnit

    # Home Assistant's request, unchanged: the server answers it, with nulls for what the model lacks
    # (weather code, wind, precipitation), as Open-Meteo answers for a model without them ...
    refused, urls = _run_in_own_loop(home_assistant_forecast(server.url))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(urls[0]).query))
    assert query["current_weather"] == "true" and query["windspeed_unit"] == "kmh"
    status, answer = request_json(urls[0])
    assert status == 200 and answer["current_weather"]["windspeed"] is None
    assert answer["daily"]["weathercode"][0] is None and None not in answer["hourly"]["temperature_2m"]
    # ... and open-meteo 0.3.2 refuses any null in a value list (it types them `list[float]`, `int`).
    assert type(refused).__name__ == "InvalidFieldValue" and "current_weather" in str(refused)
    # The same request asking only for what the bundled model has: the client reads it.
    forecast, urls = _run_in_own_loop(
        home_assistant_forecast(
            server.url,
            current_weather=False,
            hourly=[HourlyParameters.TEMPERATURE_2M],
            daily=[DailyParameters.TEMPERATURE_2M_MAX, DailyParameters.TEMPERATURE_2M_MIN],
            temperature_unit=TemperatureUnit.FAHRENHEIT,
            timezone="America/Chicago",
            past_days=1,
        )
    )
    assert not isinstance(forecast, Exception), forecast
    reference = as_json(server, {"latitude": 40.0, "longitude": -100.0, **{k: REQUEST[k] for k in (
        "temperature_unit", "timezone", "past_days")}, "hourly": "temperature_2m"})[0]  # fmt: skip
    assert forecast.utc_offset_seconds == -21600 and forecast.elevation == 0.0
    assert forecast.hourly_units.temperature_2m == "°F"
    hourly = np.array(forecast.hourly.temperature_2m, float)
    np.testing.assert_allclose(hourly, np.array(reference["hourly"]["temperature_2m"], float), atol=0.006)
    assert forecast.hourly.time[0].isoformat() == reference["hourly"]["time"][0] + ":00"
    check_daily_against_hourly(
        hourly,
        np.array(forecast.daily.temperature_2m_max, float),
        np.array(forecast.daily.temperature_2m_min, float),
    )
