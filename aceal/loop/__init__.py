"""MPI-parallel, config-driven active-learning campaigns (``aceal-loop``).

Modules: :mod:`~aceal.loop.config` (schema and validation), :mod:`~aceal.loop.structures`
(initial structures), :mod:`~aceal.loop.oracle` (isolated reference calls),
:mod:`~aceal.loop.walker` (MD walkers and their safety), :mod:`~aceal.loop.selection`
(batch selection), :mod:`~aceal.loop.refit` (incremental normal equations),
:mod:`~aceal.loop.coordinator` (MPI or serial engine), :mod:`~aceal.loop.campaign`
(iteration loop and restart), :mod:`~aceal.loop.log` and :mod:`~aceal.loop.summary`
(outputs), :mod:`~aceal.loop.cli` (``aceal-loop``).  See ``docs/campaign.md``.
"""

from aceal.loop.config import CampaignConfig, load_campaign_config, validate_campaign_config

__all__ = ["CampaignConfig", "load_campaign_config", "validate_campaign_config", "run_campaign"]


def run_campaign(cfg: CampaignConfig, output=None, quiet: bool = False):
    """Run a validated campaign (see :func:`aceal.loop.cli.run_campaign`)."""
    from aceal.loop.cli import run_campaign as _run

    return _run(cfg, output, quiet)
