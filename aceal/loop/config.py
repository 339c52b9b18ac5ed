"""The ``aceal-loop`` campaign configuration as typed settings (:mod:`aceal.settings`).

:class:`CampaignConfig` reuses the sections of ``aceal fit`` (:mod:`aceal.fit.config`:
basis keywords, weights, solver, prior, repulsion), so a key means the same in both and
errors look the same: the key path of the first problem and what was wrong
(``md.timestep: must be positive``).  Everything is checked before anything runs:
unknown keys, wrong types, files that do not exist (input paths are resolved against the
config file's directory and returned absolute), elements that are not chemical elements
or not listed in ``elements``, and the reference-calculator spec (built once).  Units:
Å, fs, K, eV, GPa, s.  The fields are documented in ``docs/campaign.md``, whose tables a
test checks against these models.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from ase.data import atomic_numbers
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aceal.errors import AcealInputError
from aceal.fit.config import (
    BasisKwargs,
    ConfigTypeWeights,
    E0Settings,
    PathList,
    PriorSettings,
    RepulsionSettings,
    SolverSettings,
    WeightsSettings,
)
from aceal.settings import Settings, load_yaml, parse

__all__ = ["CampaignConfig", "load_campaign_config", "validate_campaign_config",
           "quickstart_path"]


def _element(symbol: Any) -> str:
    if not isinstance(symbol, str) or symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}")
    return symbol


def _input_file(value: str | None, info: ValidationInfo, directory_ok: bool = False):
    """``value`` resolved against the config's directory; ValueError if absent."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = Path((info.context or {}).get("base_dir", ".")).resolve() / p
    if not (p.is_file() or (directory_ok and p.is_dir())):
        raise ValueError(f"file not found: {p}")
    return str(p)


def _input_path(value: str | None, info: ValidationInfo) -> str | None:
    return _input_file(value, info, directory_ok=True)


#: an input file (or, for ``InputPath``, a directory such as a store) that must exist;
#: relative paths are resolved against the config file's directory and made absolute
InputFile = Annotated[str | None, AfterValidator(_input_file)]
InputPath = Annotated[str | None, AfterValidator(_input_path)]


def _pair(x: list[float] | None) -> list[float] | None:
    if x is not None and (len(x) != 2 or not 0 <= x[0] <= x[1]):
        raise ValueError(f"expected [collect, stop] with 0 <= collect <= stop, got {x!r}")
    return x


#: ``[collect, stop]`` thresholds of an uncertainty signal, or null (signal unused)
Thresholds = Annotated[list[float] | None, BeforeValidator(
    lambda x: _pair(x) if isinstance(x, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in x) else x)]


class SurfaceSettings(Settings):
    miller: list[int] = Field(description="Miller indices of the slab")
    layers: int = Field(4, gt=0, description="layers of the slab")
    vacuum: float = Field(8.0, gt=0, description="vacuum on each side, Å")

    @field_validator("miller")
    @classmethod
    def _three(cls, v: list[int]) -> list[int]:
        if len(v) != 3:
            raise ValueError(f"expected three integers, got {v!r}")
        return v


#: config_type of the few-body clusters (their fit weights: ``exploration.fewbody.weight``)
FEWBODY_TYPE = "fewbody"

#: exploration protocols a structure can take part in (``exploration`` section)
PROTOCOLS = ("md", "relax", "strain", "neb")


class StructureSettings(Settings):
    """One starting structure of the walkers and the exploration protocols."""

    builder: Literal["bulk", "file"] = Field("bulk", description="ase.build.bulk or a file")
    file: InputFile = Field(None, description="structure file (builder file)")
    index: str | int = Field(-1, description="frame of the file")
    element: str | None = Field(None, description="element (builder bulk)")
    crystal: Literal["fcc", "bcc", "hcp", "diamond", "sc"] = "fcc"
    a: float | None = Field(None, gt=0, description="lattice constant, Å")
    cubic: bool = True
    repeat: list[int] = Field([1, 1, 1], description="supercell repeats")
    surface: SurfaceSettings | None = None
    vacancies: int = Field(0, ge=0, description="atoms removed at random")
    interstitials: int = Field(0, ge=0, description="atoms added at random")
    rattle: float = Field(0.0, ge=0, description="Gaussian displacement, Å")
    strain: float = Field(0.0, ge=0, description="random strain amplitude (fraction)")
    config_type: str | None = None
    explore: Literal["auto"] | list[Literal[PROTOCOLS]] = Field(
        "auto", description="exploration protocols on this structure (auto: by its kind)")

    @field_validator("repeat")
    @classmethod
    def _three_positive(cls, v: list[int]) -> list[int]:
        if len(v) != 3 or min(v) <= 0:
            raise ValueError(f"expected three positive integers, got {v!r}")
        return v

    @model_validator(mode="after")
    def _builder_keys(self) -> StructureSettings:
        if self.builder == "file":
            if not self.file:
                raise ValueError("@file: required when builder is file")
        else:
            if not self.element:
                raise ValueError("@element: required when builder is bulk")
            _element(self.element)
            if self.file:
                raise ValueError("@file: only for builder file")
        protocols = self.protocols()
        if "neb" in protocols and not (self.builder == "bulk" and self.vacancies):
            raise ValueError("@explore: neb needs a built structure with vacancies "
                             "(builder bulk, vacancies >= 1)")
        if "strain" in protocols and self.surface is not None:
            raise ValueError("@explore: strain needs a periodic bulk cell, not a surface")
        return self

    def protocols(self) -> list[str]:
        """The exploration protocols of this structure; ``auto`` by its kind: thermal MD
        everywhere, homogeneous strains for a perfect bulk crystal, relaxation for
        defects, surfaces and files, and vacancy-hop NEB for vacancies."""
        if self.explore != "auto":
            return list(dict.fromkeys(self.explore))
        if self.builder == "file":
            return ["md", "relax"]
        if self.surface is None and not self.vacancies and not self.interstitials:
            return ["md", "strain"]
        return ["md", "relax"] + (["neb"] if self.vacancies else [])


class InitialData(Settings):
    store: InputPath = Field(None, description="a training store to import")
    xyz: PathList = Field(None, description="labelled extended-XYZ files to import")
    seeds_per_structure: int = Field(4, ge=0, description="rattled seeds labelled first")
    seed_rattle: float = Field(0.05, ge=0, description="their displacement, Å")
    seed_strain: float = Field(0.02, ge=0, description="their strain (fraction)")

    @field_validator("xyz")
    @classmethod
    def _xyz(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None:
            return None
        out = []
        for i, x in enumerate(v):
            try:
                out.append(_input_file(x, info))
            except ValueError as err:
                raise ValueError(f"@[{i}]: {err}") from None
        return out


class CampaignE0(E0Settings):
    """``e0`` as in ``aceal fit``, computed once from the initial data and then fixed; the
    joint fit (``method: fit``) needs E0 free in every refit and is not offered."""

    method: Literal["auto", "composition", "given", "isolated"] = Field(
        "auto", description="least squares against composition, given, or isolated atoms "
                            "(as in aceal fit; labelled with the seeds unless imported); "
                            "auto: isolated with few-body exploration, else composition")


class CampaignFit(Settings):
    weights: WeightsSettings = Field(default_factory=WeightsSettings)
    solver: SolverSettings = Field(default_factory=SolverSettings)
    prior: PriorSettings = Field(default_factory=PriorSettings)
    committee: int = Field(8, ge=2, description="posterior samples giving the spreads")
    calibrate_committee: bool = Field(
        False, description="scale the members' spread to the validation set's force errors")
    chunk_size: int = Field(16, gt=0, description="configurations per assembly chunk")


class ReferenceSettings(Settings):
    calculator: str | dict[str, Any] = Field(
        description="a calculator name (e.g. EMT) or a mapping with name or class")
    timeout: float = Field(600.0, gt=0, description="per attempt, s")
    retries: int = Field(1, ge=0, description="extra attempts after a failure")
    max_force: float = Field(50.0, gt=0, description="larger force components fail, eV/Å")
    stress: bool = Field(True, description="also label the stress of periodic cells")
    isolation: Literal["none", "process"] = Field(
        "none", description="run the reference in this process or a killable worker")

    @field_validator("calculator", mode="before")
    @classmethod
    def _spec(cls, v: Any) -> Any:
        if (isinstance(v, str) and v.strip()) or (isinstance(v, dict)
                                                  and ("name" in v or "class" in v)):
            from aceal.reference import check_spec

            try:
                check_spec(v)
            except AcealInputError as err:
                raise ValueError(str(err)) from None
            return v
        raise ValueError("expected a calculator name (e.g. EMT) or a mapping with 'name' or "
                         f"'class', got {v!r}")


def _temperatures(x: Any) -> Any:
    vals = x if isinstance(x, list) else [x]
    if not vals or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                           for v in vals):
        raise ValueError("expected a temperature (K) or a non-empty list of positive "
                         f"temperatures, got {x!r}")
    return [float(v) for v in vals]


class MDSettings(Settings):
    walkers: int = Field(2, gt=0, description="MD walkers")
    ensemble: Literal["nvt", "npt"] = Field("nvt", description="Langevin NVT or NPT")
    temperature: Annotated[list[float], BeforeValidator(_temperatures)] = Field(
        [300.0], description="K; a list gives one per iteration (the last repeats)")
    timestep: float = Field(2.0, gt=0, description="fs")
    friction: float = Field(0.02, gt=0, description="Langevin friction, 1/fs")
    steps_per_segment: int = Field(200, gt=0, description="MD steps per iteration")
    sample_interval: int = Field(10, gt=0, description="steps between uncertainty samples")
    pressure: float = Field(0.0, description="GPa (npt)")
    taup: float = Field(500.0, gt=0, description="barostat time, fs (npt)")
    min_distance: float = Field(1.5, gt=0, description="closer atoms end the segment, Å")
    keep_last: int = Field(2, ge=0, description="sane frames kept as candidates on blow-up")

    @model_validator(mode="after")
    def _interval(self) -> MDSettings:
        if self.sample_interval > self.steps_per_segment:
            raise ValueError("@sample_interval: larger than md.steps_per_segment")
        return self


_RARE_KINDS = ("hop", "coordination", "bond_break", "bond_form")


class RareEventSettings(Settings):
    enabled: bool = True
    hop_fraction: float = Field(0.35, gt=0, description="hop: displacement / NN distance")
    kinds: list[Literal[_RARE_KINDS]] = Field(["hop", "coordination"],
                                             description=", ".join(_RARE_KINDS))
    persistence: int = Field(3, ge=1, description="samples a change must hold to be an event")


class UncertaintySettings(Settings):
    force_std: Thresholds = Field([0.05, 0.5], description="committee force std, eV/Å")
    energy_std: Thresholds = Field(None, description="committee energy std, eV/atom")
    gamma: Thresholds = Field([5.0, 25.0], description="extrapolation grade")
    rare_events: RareEventSettings = Field(default_factory=RareEventSettings)

    @model_validator(mode="after")
    def _one_signal(self) -> UncertaintySettings:
        if self.force_std is None and self.energy_std is None and self.gamma is None:
            raise ValueError("give at least one of force_std, energy_std, gamma")
        return self


class SelectionSettings(Settings):
    method: Literal["fps", "d-optimal", "entropy", "information", "random"] = "fps"
    batch_size: int = Field(8, gt=0, description="configurations labelled per iteration")
    rare_event_priority: bool = Field(True, description="rare-event candidates first")
    priority_share: float = Field(0.5, ge=0, le=1, description="at most this batch fraction")


class ValidationSettings(Settings):
    file: InputFile = Field(None, description="labelled held-out frames (else generated)")
    frames: int = Field(8, ge=0, description="frames of reference MD")
    temperature: float = Field(1000.0, gt=0, description="K")
    steps_between: int = Field(50, gt=0, description="reference MD steps between frames")
    timestep: float = Field(2.0, gt=0, description="fs")


class RelaxSettings(Settings):
    steps: int = Field(60, gt=0, description="optimizer steps (FIRE)")
    sample_every: int = Field(10, gt=0, description="steps between candidate frames")
    fmax: float = Field(0.02, gt=0, description="force convergence, eV/Å")
    cell: bool = Field(True, description="relax the cell of periodic bulk cells too")
    rattle: float = Field(0.03, ge=0, description="Gaussian start displacement, Å")
    dumbbells: int = Field(3, ge=0, description="structures with an interstitial: also "
                           "relax split dumbbells along this many neighbour-shell directions")


class StrainSettings(Settings):
    amplitudes: list[Annotated[float, Field(gt=0, lt=0.5)]] = Field(
        [0.01, 0.03], min_length=1, description="strain magnitudes (fraction)")
    relax_steps: int = Field(40, ge=0, description="cell relaxation steps before straining")


class NEBSettings(Settings):
    images: int = Field(3, gt=0, description="intermediate images")
    steps: int = Field(60, gt=0, description="optimizer steps (plain, then climbing)")
    fmax: float = Field(0.1, gt=0, description="NEB force convergence, eV/Å")
    relax_steps: int = Field(40, ge=0, description="end-state relaxation steps")
    on_hops: bool = Field(True, description="also a NEB for each hop a walker saw")
    max_hops: int = Field(2, ge=0, description="hop NEBs per iteration at most")
    midpoints: bool = Field(True, description="also the midpoints between neighbouring "
                                              "images as candidates")


class FewBodySettings(Settings):
    enabled: bool = Field(False, description="dimer and trimer candidates")
    points: int = Field(8, gt=1, description="distances per scan")
    r_min: float = Field(0.7, gt=0, description="shortest distance / sum of covalent radii")
    angles: list[Annotated[float, Field(gt=0, le=180)]] = Field(
        [60.0, 90.0, 120.0, 180.0], description="trimer apex angles, degrees")
    weight: float = Field(0.01, gt=0, description="their fit weights relative to fit.weights")
    seed_dimers: bool = Field(True, description="label the dimer scans with the seeds")


class ExplorationSettings(Settings):
    every: int = Field(1, gt=0, description="iterations between protocol runs")
    share: float = Field(0.5, ge=0, le=1,
                         description="batch fraction reserved for protocol candidates")
    relax: RelaxSettings = Field(default_factory=RelaxSettings)
    strain: StrainSettings = Field(default_factory=StrainSettings)
    neb: NEBSettings = Field(default_factory=NEBSettings)
    fewbody: FewBodySettings = Field(default_factory=FewBodySettings)


class StoppingSettings(Settings):
    max_iterations: int = Field(10, gt=0)
    max_reference_calls: int | None = Field(None, gt=0)
    max_wall_time: float | None = Field(None, gt=0, description="s")
    force_mae: float | None = Field(None, gt=0, description="validation force MAE, eV/Å")
    patience: int | None = Field(None, gt=0, description="iterations without improvement")
    rtol: float = Field(0.05, ge=0, description="relative improvement that counts")
    properties: dict[Literal["a0", "bulk_modulus", "elastic", "vacancy_formation",
                             "vacancy_migration", "surface", "interstitial_formation"],
                     Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="stop when each property's committee spread is below its tolerance "
                    "(eV for formation/migration energies, relative otherwise)")


class OutputSettings(Settings):
    directory: str = "aceal-campaign"
    store: str = "train.zarr"
    log: str = "log.jsonl"
    plots: bool = Field(True, description="write the summary plots")
    progress: bool = Field(True, description="progress lines on the terminal")


class ParallelSettings(Settings):
    timeout: float = Field(3600.0, gt=0, description="rank 0 waiting for a worker, s")
    worker_timeout: float = Field(86400.0, gt=0, description="a worker waiting for rank 0, s")


class CampaignConfig(Settings):
    """An ``aceal-loop`` campaign file."""

    elements: list[Annotated[str, BeforeValidator(_element)]] = Field(min_length=1)
    structures: list[StructureSettings] = Field(min_length=1)
    initial_data: InitialData = Field(default_factory=InitialData)
    basis: BasisKwargs = Field(default_factory=dict)
    e0: CampaignE0 = Field(default_factory=CampaignE0)
    repulsion: RepulsionSettings | None = None
    fit: CampaignFit = Field(default_factory=CampaignFit)
    reference: ReferenceSettings
    md: MDSettings = Field(default_factory=MDSettings)
    exploration: ExplorationSettings = Field(default_factory=ExplorationSettings)
    uncertainty: UncertaintySettings = Field(default_factory=UncertaintySettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    stopping: StoppingSettings = Field(default_factory=StoppingSettings)
    output: OutputSettings = Field(default_factory=OutputSettings)
    parallel: ParallelSettings = Field(default_factory=ParallelSettings)
    seed: int = Field(0, description="random seed of structures, seeds, walkers, committees")
    threads_per_rank: int | None = Field(None, gt=0, description="default cores // ranks")

    _base_dir: str = PrivateAttr(".")
    _config_path: str | None = PrivateAttr(None)

    @property
    def base_dir(self) -> str:
        """Directory relative paths of the config resolve against (absolute)."""
        return self._base_dir

    @property
    def config_path(self) -> str | None:
        """The config file (None for a config given as data)."""
        return self._config_path

    @model_validator(mode="after")
    def _cross_checks(self) -> CampaignConfig:
        if len(set(self.elements)) != len(self.elements):
            raise ValueError("@elements: repeated element")
        for i, s in enumerate(self.structures):
            if s.element is not None and s.element not in self.elements:
                raise ValueError(f"@structures[{i}].element: element {s.element!r} is not in "
                                 f"elements ({', '.join(self.elements)})")
        if self.e0.method == "given":
            for el in self.e0.values:
                if el not in self.elements:
                    raise ValueError(f"@e0.values.{el}: element {el!r} is not in elements")
            missing = [el for el in self.elements if el not in self.e0.values]
            if missing:
                raise ValueError(f"@e0.values: missing {', '.join(missing)}")
        fewbody = self.exploration.fewbody
        if self.e0.method == "auto":     # dimer energies mean nothing without the atom's
            self.e0.method = "isolated" if fewbody.enabled else "composition"
        types = self.fit.weights.config_types
        if fewbody.enabled and FEWBODY_TYPE not in types:
            w = self.fit.weights
            types[FEWBODY_TYPE] = ConfigTypeWeights(energy=w.energy * fewbody.weight,
                                                    forces=w.forces * fewbody.weight,
                                                    virial=w.virial * fewbody.weight)
        if not any("md" in s.protocols() for s in self.structures):
            raise ValueError("@structures: no structure explores with md (the walkers)")
        init = self.initial_data
        if init.seeds_per_structure == 0 and not (init.store or init.xyz):
            raise ValueError("@initial_data: no initial data (seeds_per_structure is 0 and "
                             "no store or xyz given)")
        return self


def validate_campaign_config(doc: Any, base_dir: str | Path = ".",
                             check_calculator: bool = True) -> CampaignConfig:
    """Validate a parsed campaign config; defaults filled in, input paths absolute.

    Parameters
    ----------
    doc
        The parsed YAML document.
    base_dir
        Directory that relative *input* paths (structure files, initial data, potential
        files, validation file) are resolved against: the config file's directory.
    check_calculator
        Build the reference calculator once to check its spec (files, packages).

    Raises
    ------
    AcealInputError
        Naming the key path of the first problem.
    """
    base = Path(base_dir).resolve()
    cfg = parse(CampaignConfig, doc, context={"base_dir": str(base)})
    cfg._base_dir = str(base)
    if check_calculator:
        from aceal.reference import make_calculator

        try:
            make_calculator(cfg.reference.calculator, base)
        except AcealInputError as err:
            raise AcealInputError(f"reference.calculator: {err}") from None
    return cfg


def load_campaign_config(path: str | Path | None = None,
                         check_calculator: bool = True) -> CampaignConfig:
    """Read and validate a campaign YAML file (``None``: the embedded quickstart)."""
    p = quickstart_path() if path is None else Path(path)
    cfg = validate_campaign_config(load_yaml(p), p.resolve().parent, check_calculator)
    cfg._config_path = str(p.resolve())
    return cfg


def quickstart_path() -> Path:
    """Path of the embedded ``aceal/data/quickstart.yaml``."""
    return Path(str(resources.files("aceal") / "data" / "quickstart.yaml"))
