"""The folded ("C-tilde") description of an ACE potential, shared by every source.

Both our own :class:`~aceal.basis.ACEBasis` (with fitted coefficients) and PACE ``.yace``
files are turned into a :class:`CTildePotential`; the numba kernels evaluate only this form.

Conventions (identical to PACE, so ``.yace`` files evaluate unchanged):

* Radial basis ``g_k(r)``, ``k = 0..nradbase-1`` of a bond (pair of species ``mu_i, mu_j``)
  is one of PACE's named bases (``SBessel``, ``ChebExpCos``, ``ChebPow``, ``ChebLinear``),
  times an optional inner cutoff; radial functions ``R_nl(r) = sum_k crad[n, l, k] g_k(r)``.
* Spherical harmonics are PACE's: the orthonormal complex ``Y_l^m`` with the
  Condon-Shortley phase, times ``sqrt(4 pi)`` (so ``Y_0^0 = 1``).
* Atomic base of atom i, for neighbour species ``mu``, ``n = 1..nradmax`` (1-based, as in
  PACE files), ``l = 0..lmax``, ``m = -l..l``:
  ``A[mu, n, l, m] = sum_{j: Z_j = mu} R_{n-1,l}(r_ij) Y_l^m(r_ij_hat)``.
  Rank-1 functions use the radial basis directly: ``A1[mu, n] = sum_j g_{n-1}(r_ij)``.
* A function of rank ``r`` (correlation order) contributes, for each density ``p``,
  ``rho_p += sum_s ctildes[s, p] * Re(prod_t A[mus[t], ns[t], ls[t], ms_combs[s, t]])``.
* Site energy ``E_i = E0[mu_i] + fcut(rho_core) * sum_p w_p F_p(rho_p) + rho_core`` where
  ``rho_core = sum_j core_repulsion(r_ij)``; ``F`` is the embedding of :class:`Embedding`.

Units: distances in Å, energies in eV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RADIAL_BASES = ("SBessel", "ChebExpCos", "ChebPow", "ChebLinear")
EMBEDDINGS = ("FinnisSinclair", "FinnisSinclairShiftedScaled", "linear")
INNER_CUTOFF_TYPES = ("distance", "density", "zbl")


@dataclass
class Bond:
    """Radial functions and cutoffs of one ordered species pair ``(mu_i, mu_j)``.

    ``crad`` has shape ``(nradmax, lmax + 1, nradbase)``.
    Core repulsion ``prehc * exp(-lambdahc r^2) / r`` (eV) with a cosine envelope to
    ``rcut``; with ``inner_cutoff_type == "distance"`` it is switched off above ``rcut_in``
    and the ACE radial functions are switched off below ``rcut_in - dcut_in``.
    """

    radbasename: str
    radparameters: list[float]
    nradbase: int
    nradmax: int
    lmax: int
    crad: np.ndarray
    rcut: float
    dcut: float = 0.01
    rcut_in: float = 0.0
    dcut_in: float = 0.0
    inner_cutoff_type: str = "distance"
    prehc: float = 0.0
    lambdahc: float = 0.0


@dataclass
class Embedding:
    """Embedding ``F(rho_1..rho_P)`` of a central species.

    ``npoti`` is ``"FinnisSinclairShiftedScaled"`` or ``"FinnisSinclair"`` (PACE) with
    ``FS_parameters = [w_1, m_1, w_2, m_2, ...]``, or ``"linear"``: ``E = rho_1`` and
    the other densities are extra linear read-outs (committee members).
    ``rho_core_cutoff``/``drho_core_cutoff`` switch ACE off where the core density is high.
    """

    ndensity: int
    npoti: str = "linear"
    FS_parameters: list[float] = field(default_factory=lambda: [1.0, 1.0])
    rho_core_cutoff: float = 100000.0
    drho_core_cutoff: float = 250.0


@dataclass
class CTildeFunction:
    """One product function: ``ms_combs`` is ``(nms, rank)``, ``ctildes`` is ``(nms, ndensity)``.

    ``ns`` are 1-based radial indices (PACE convention); ``mu0`` is the central species.
    """

    mu0: int
    mus: np.ndarray
    ns: np.ndarray
    ls: np.ndarray
    ms_combs: np.ndarray
    ctildes: np.ndarray

    @property
    def rank(self) -> int:
        return len(self.mus)


@dataclass
class CTildePotential:
    """Everything the evaluation kernel needs, in plain Python/numpy form.

    ``bonds[(mu_i, mu_j)]`` for every ordered pair, ``embeddings[mu]`` and
    ``functions[mu]`` (list of :class:`CTildeFunction`) for every central species.
    ``delta_spline_bins`` is the radial spline step (Å).
    """

    elements: list[str]
    e0: np.ndarray
    bonds: dict[tuple[int, int], Bond]
    embeddings: dict[int, Embedding]
    functions: dict[int, list[CTildeFunction]]
    delta_spline_bins: float = 0.001

    @property
    def ndensity(self) -> int:
        return max(e.ndensity for e in self.embeddings.values())

    @property
    def cutoff(self) -> float:
        return max(b.rcut for b in self.bonds.values())
