"""Run directories: their layout, checkpoints and atomic writes (``directory``), what config.json
holds and how it is checked (``config``), and the published setups a run can start from
(``presets``)."""
