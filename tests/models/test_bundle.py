"""Model bundles: round trip, no pickle, refusal of lying metadata and of mismatched data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fno_forecast.bundle import check_compatible, default_bundle_path, load_bundle
from fno_forecast.bundle_metadata import read_metadata, update_skill_card
from fno_forecast.data.schema import ChannelInfo, DataSchema, GridInfo
from fno_forecast.errors import BundleError
from fno_forecast.models.padding import FastFFTPadding
from tests.fixtures.bundle import TINY_LAT, TINY_LON, build_tiny_bundle


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(bundle, target)
    return target


def test_round_trip_gives_the_same_forecast(tmp_path: Path) -> None:
    first = build_tiny_bundle(tmp_path / "a", seed=3)
    second = build_tiny_bundle(tmp_path / "b", seed=3)
    a, b = load_bundle(first), load_bundle(second)
    assert a.sha256 == b.sha256
    state = torch.from_numpy(a.climatology.at_hours(np.array([400_000.0])))
    hours = torch.tensor([400_000.0], dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(a.stepper(state, time_hours=hours), b.stepper(state, time_hours=hours))
    assert a.schema.channel_names == ("air", "z500")
    assert a.metadata["model"]["name"] == "fno"
    assert a.metadata["skill_card"] is None
    assert not a.stepper.training


def test_bundle_files_are_json_and_safetensors(tiny_bundle: Path) -> None:
    names = sorted(p.name for p in tiny_bundle.iterdir())
    assert names == ["arrays.safetensors", "model.json", "weights.safetensors"]
    metadata = json.loads((tiny_bundle / "model.json").read_text())
    assert metadata["arrays"]["climatology"] == [1 + 2 * 2 + 2 * 1, 2, 8, 12]
    assert metadata["stepper"] == {
        "use_history": True,
        "use_climatology": True,
        "relaxation": False,
        "prior": "none",
    }


def test_lying_metadata_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    path = _copy(tiny_bundle, tmp_path)
    metadata = json.loads((path / "model.json").read_text())
    metadata["schema"]["channels"].append(dict(metadata["schema"]["channels"][0], name="extra"))
    (path / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="array 'mean' has shape \\(2,\\)"):
        load_bundle(path)


def test_weights_that_do_not_match_the_config_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    path = _copy(tiny_bundle, tmp_path)
    metadata = json.loads((path / "model.json").read_text())
    metadata["model"]["config"]["hidden_channels"] = 16
    (path / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="weight .* has shape .* the model in metadata needs"):
        load_bundle(path)


def test_a_huge_width_in_metadata_is_refused_without_allocating_it(tiny_bundle: Path, tmp_path: Path) -> None:
    import resource

    path = _copy(tiny_bundle, tmp_path)
    metadata = json.loads((path / "model.json").read_text())
    metadata["model"]["config"]["hidden_channels"] = 100_000  # ~1 TB of spectral weights if it were built
    (path / "model.json").write_text(json.dumps(metadata))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match="the model in metadata needs"):
        load_bundle(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # kB


def test_missing_and_corrupt_files_are_named(tiny_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no model.json"):
        load_bundle(tmp_path)
    path = _copy(tiny_bundle, tmp_path)
    (path / "weights.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(BundleError, match="cannot read"):
        load_bundle(path)
    (path / "model.json").write_text("{")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_metadata(path)


def test_update_skill_card_keeps_weights(tiny_bundle: Path, tmp_path: Path) -> None:
    path = _copy(tiny_bundle, tmp_path)
    before = load_bundle(path).sha256
    update_skill_card(path, {"rmse": {"air": {"24": 1.5}}})
    after = load_bundle(path)
    assert after.skill_card == {"rmse": {"air": {"24": 1.5}}}
    assert after.sha256 == before


def test_check_compatible_names_the_mismatch(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    check_compatible(bundle, bundle.schema)
    channels = (bundle.schema.channels[0], ChannelInfo(name="t850", variable="t", level=850.0))
    with pytest.raises(
        BundleError, match="channels \\['air', 'z500'\\] do not match data channels \\['air', 't850'\\]"
    ):
        check_compatible(bundle, DataSchema(channels=channels, grid=bundle.schema.grid, step_hours=6.0))
    wider = GridInfo.from_arrays(TINY_LAT, np.linspace(230.0, 260.0, 13))
    with pytest.raises(BundleError, match="grid 8x12"):
        check_compatible(bundle, DataSchema(channels=bundle.schema.channels, grid=wider, step_hours=6.0))
    shifted = GridInfo.from_arrays(TINY_LAT + 1.0, TINY_LON)
    with pytest.raises(BundleError, match="model lat"):
        check_compatible(bundle, DataSchema(channels=bundle.schema.channels, grid=shifted, step_hours=6.0))
    with pytest.raises(BundleError, match="time step 6 h does not match data step 12 h"):
        check_compatible(
            bundle, DataSchema(channels=bundle.schema.channels, grid=bundle.schema.grid, step_hours=12.0)
        )


def test_default_bundle_path_is_inside_the_package() -> None:
    path = default_bundle_path()
    assert path.name == "default_model" and path.parent.name == "fno_forecast"


CORRECTION = {
    "window_days": [1.0, 2.0],
    "coefficients": [[0.5, 0.25], [0.6, 0.3]],
    "heldout_rmse": [1.0, 0.9],
    "climatology_rmse": 1.2,
    "fitted_on": "2013-01-01T00/2013-08-31T18",
    "held_out": "2013-09-01T00/2013-12-31T18",
    "target_hours": [120.0, 240.0],
}


def _with_metadata(tiny_bundle: Path, tmp_path: Path, **changes: object) -> Path:
    path = _copy(tiny_bundle, tmp_path)
    metadata = json.loads((path / "model.json").read_text())
    metadata.update(changes)
    (path / "model.json").write_text(json.dumps(metadata))
    return path


def test_recent_anomaly_correction_loads_and_is_checked(tiny_bundle: Path, tmp_path: Path) -> None:
    assert load_bundle(tiny_bundle).recent_anomaly is None
    good = load_bundle(_with_metadata(tiny_bundle, tmp_path / "good", recent_anomaly=CORRECTION))
    assert good.recent_anomaly is not None and good.recent_anomaly.window_days == (1.0, 2.0)
    one_channel = dict(CORRECTION, coefficients=[[0.5], [0.6]])
    with pytest.raises(BundleError, match="recent_anomaly has coefficients for 1 channels, the schema has 2"):
        load_bundle(_with_metadata(tiny_bundle, tmp_path / "short", recent_anomaly=one_channel))
    with pytest.raises(BundleError, match="invalid recent_anomaly"):
        load_bundle(_with_metadata(tiny_bundle, tmp_path / "broken", recent_anomaly={"window_days": [1]}))


def test_bundles_from_before_fft_padding_keep_neuraloperator_padding(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    path = _copy(tiny_bundle, tmp_path)
    metadata = json.loads((path / "model.json").read_text())
    assert metadata["model"]["config"].pop("fft_padding") is True
    (path / "model.json").write_text(json.dumps(metadata))
    old, new = load_bundle(path), load_bundle(tiny_bundle)
    assert type(old.stepper.network.domain_padding).__name__ == "DomainPadding"
    assert isinstance(new.stepper.network.domain_padding, FastFFTPadding)


def test_lead_calibration_loads_and_is_checked(tiny_bundle: Path, tmp_path: Path) -> None:
    assert load_bundle(tiny_bundle).lead_calibration is None
    good = {"factors": [[1.0, 1.0], [0.9, 0.8]], "fitted_on": "2013-01-01/2013-12-31", "inits": 10}
    bundle = load_bundle(_with_metadata(tiny_bundle, tmp_path / "good", lead_calibration=good))
    assert bundle.lead_calibration is not None and bundle.lead_calibration.factors[1] == (0.9, 0.8)
    one_channel = dict(good, factors=[[1.0], [0.9]])
    with pytest.raises(BundleError, match="lead_calibration has factors for 1 channels"):
        load_bundle(_with_metadata(tiny_bundle, tmp_path / "short", lead_calibration=one_channel))
    huge = dict(good, factors=[[1.0, 50.0]])
    with pytest.raises(BundleError, match="invalid lead_calibration"):
        load_bundle(_with_metadata(tiny_bundle, tmp_path / "huge", lead_calibration=huge))
