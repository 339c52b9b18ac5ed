"""The documentation of the config files is checked against the typed settings, so the
two cannot drift: every key documented exists, every key exists in the docs, and the
documented defaults are the models' defaults."""

from __future__ import annotations

import re

import pytest
import yaml

from aceal.fit.config import FitConfig, validate_config
from aceal.loop.config import CampaignConfig
from aceal.settings import dump, settings_rows, yaml_loader
from tests.loop_helpers import ROOT

DOCS = ROOT / "docs"


def _fit_schema_block() -> dict:
    text = (DOCS / "fitting.md").read_text()
    block = text.split("## Config schema", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    return yaml.load(block, Loader=yaml_loader())  # noqa: S506 - aceal's safe loader


def _leaves(doc: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in doc.items():
        if isinstance(v, dict) and v and k not in ("basis", "values", "config_types", "score"):
            out |= _leaves(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out


def test_fitting_md_schema_lists_every_key_with_its_default():
    doc = _fit_schema_block()
    documented = _leaves(doc)
    model = {key for key, _, _ in settings_rows(FitConfig)}
    assert documented == model, (documented ^ model)
    # the documented values are the defaults, except the example data paths and basis
    example = {k: v for k, v in doc.items() if k not in ("data", "basis")}
    example["data"] = {"keys": doc["data"]["keys"]}
    assert dump(validate_config(example)) == dump(validate_config(None))


def _tables(text: str) -> dict[str, list[tuple[list[str], str]]]:
    """``{section: [(keys of a row, default cell)]}`` of the ``| key | default |`` tables."""
    out: dict[str, list] = {}
    section = None
    for line in text.splitlines():
        head = re.match(r"### `([a-z_]+)`", line)
        if head:
            section = head.group(1)
            continue
        if line.startswith("## "):
            section = None
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") \
            else []
        if section and len(cells) >= 3 and cells[0].startswith("`"):
            keys = re.findall(r"`([a-z_.]+)`", cells[0])
            out.setdefault(section, []).append((keys, cells[1]))
    return out


def _value(cell: str):
    cell = cell.strip("`")
    if cell in ("none", "null"):
        return None
    try:
        return yaml.safe_load(cell)
    except yaml.YAMLError:
        return cell


def test_campaign_md_documents_every_key_and_no_other():
    text = (DOCS / "campaign.md").read_text()
    tables = _tables(text)
    defaults = {key: default for key, default, _ in settings_rows(CampaignConfig)}
    rows = {f"{section}.{key}": cell for section, entries in tables.items()
            for keys, cell in entries for key in keys}
    unknown = sorted(k for k in rows if k not in defaults
                     and not any(d.startswith(k + ".") for d in defaults))
    assert not unknown, f"documented keys that the settings do not have: {unknown}"
    prose = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", text))
    prose |= {k for line in text.splitlines() if line.startswith("### ")
              for k in re.findall(r"`([a-z_]+)`", line)}
    missing = sorted(k for k in defaults if k not in rows and k not in prose
                     and k.split(".")[0] not in ("basis", "e0", "repulsion", "fit"))
    assert not missing, f"keys of the settings missing from docs/campaign.md: {missing}"


@pytest.mark.parametrize("section", ["initial_data", "reference", "md", "exploration", "selection",
                                     "validation", "stopping"])
def test_campaign_md_defaults_are_the_settings_defaults(section):
    defaults = {key: default for key, default, _ in settings_rows(CampaignConfig)}
    for keys, cell in _tables((DOCS / "campaign.md").read_text())[section]:
        if len(keys) != 1 or cell == "required":
            continue
        want = defaults[f"{section}.{keys[0]}"]
        got = cell.strip("`") if isinstance(want, str) else _value(cell)
        if isinstance(want, list) and len(want) == 1 and not isinstance(got, list):
            want = want[0]      # md.temperature: a single value means a one-entry schedule
        assert got == want, f"{section}.{keys[0]}: docs say {cell}, settings {want!r}"
