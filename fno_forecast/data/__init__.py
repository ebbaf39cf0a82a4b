"""Data layer: gridded files in, canonical `(time, channel, lat, lon)` float32 arrays out.

Modules: `formats` (recognise and open one file), `coords` (find and rename time/lat/lon/level),
`source` (`open_source`: several files or a glob, lazy), `channels` (`open_channels`, `to_channels`,
`Channels`), `timeaxis` (`TimeInfo`, `detect_step`, `parse_period`, `select_period`), `stats`
(`compute_stats`), `checks` (`check_finite`, `count_missing`), `windows` (`WindowDataset`), `schema`.

Decisions a user should know about (each is also written into the schema's `notes`):

- Ensembles: a `number`/`member`/`realization` dim of size > 1 is reduced to one member, the first
  unless `member=` names another by its number; `DataSchema.member` records which.
- Singleton dims (`step`, `surface`, a one-member `number`) and scalar coordinates are dropped.
- A file without a time coordinate but with a `month` dim of values 1..12 (ERA-Interim monthly means)
  gets a monthly time axis in the nominal year 2000 (`coords.NOMINAL_YEAR`); its step is counted in
  calendar months (`TimeInfo.step_months`).
- GRIB fields use their valid time (`valid_time` = run time + step) as `time`.
- Pressure levels stored in Pa become hPa, so channel names read `z500`, `t850`.
- Gaps (a whole number of missing steps) are allowed and reported; windows and tendencies never cross
  them. An irregular step (not a whole number of steps) is refused unless `step_hours` subsamples it.
- NaN/fill values are refused in a training period by `check_finite` unless a fill policy is passed.
"""
