"""Validation of a potential against a reference calculator on physical properties.

Each submodule computes one family of properties with *any* ASE calculator and
returns plain dicts of numbers (units in the key names):

- :mod:`aceal.validate.bulk` -- lattice constant, E-V curve, cubic elastic constants
- :mod:`aceal.validate.defects` -- vacancy formation/migration, surfaces, interstitials
- :mod:`aceal.validate.fewbody` -- dimer and trimer curves
- :mod:`aceal.validate.dynamics` -- Langevin MD, RDF, diffusion, NVE drift
- :mod:`aceal.validate.rare_events` -- force errors on rare-event atoms (Liu, He, Mo 2023)
- :mod:`aceal.validate.dislocation` -- bcc screw dislocation core
- :mod:`aceal.validate.suite` -- model vs reference side by side
- :mod:`aceal.validate.report` -- Markdown + PNG + JSON report
"""

__all__ = ["run_validation"]


def __getattr__(name):  # lazy, so that ``import aceal.validate.bulk`` stays light
    if name == "run_validation":
        from aceal.validate.suite import run_validation

        return run_validation
    raise AttributeError(name)
