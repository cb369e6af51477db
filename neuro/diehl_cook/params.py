r"""Parameters of the Diehl & Cook (2015) unsupervised STDP network, with units.

The network (Diehl & Cook, Front. Comput. Neurosci. 9:99, 2015; their Brian code):

* **input**: ``n_input`` Poisson sources, one per pixel, rate
  :math:`r_i = x_i\,r_{max}\,\kappa/\kappa_0` for a pixel intensity :math:`x_i \in [0, 1]`
  (:math:`r_{max}` = 63.75 Hz, i.e. pixel/4 for 8-bit MNIST, at the starting intensity
  :math:`\kappa_0`); an example is shown for ``t_present_ms`` then the network rests for
  ``t_rest_ms``. If the excitatory layer fired fewer than ``min_spikes`` spikes, the intensity
  :math:`\kappa` is raised by one and the example shown again.
* **excitatory layer** (``n_exc`` conductance-based LIF neurons), membrane in mV, conductances
  dimensionless (in units of the leak conductance):

  .. math::

      \tau_m \frac{dv}{dt} = (E_{rest} - v) + g_e (E_{exc} - v) + g_i (E_{inh} - v),
      \qquad \tau_{ge}\frac{dg_e}{dt} = -g_e, \qquad \tau_{gi}\frac{dg_i}{dt} = -g_i,

  spike when :math:`v > V_{th} + \theta - \text{offset}` (and not refractory), reset to
  :math:`V_{reset}`, refractory ``t_ref``; adaptive threshold :math:`\theta` (mV) grows by
  :math:`\theta_+` at each spike and decays with :math:`\tau_\theta` (learning only).
* **inhibitory layer** (``n_exc`` neurons, same equations with their own constants): each
  excitatory neuron drives one inhibitory neuron (weight ``w_exc_inh``), each inhibitory neuron
  inhibits every excitatory neuron but its partner (``w_inh_exc``): lateral inhibition.
* **plasticity** on input→excitatory weights, :math:`w \in [0, w_{max}]`, nearest-spike traces
  set to 1 at a spike: at a presynaptic spike :math:`w \leftarrow w - \nu_{pre}\,x_{post1}`;
  at a postsynaptic spike :math:`w \leftarrow w + \nu_{post}\,x_{pre}\,x_{post2}` (with
  :math:`x_{post2}` taken *before* its own reset) — the "triplet-like" rule of their code, with
  traces :math:`x_{pre}` (:math:`\tau_{pre}`), :math:`x_{post1}` (:math:`\tau_{post1}`),
  :math:`x_{post2}` (:math:`\tau_{post2}`).
* **weight normalisation**: after every example the input weights of each excitatory neuron are
  rescaled to sum to ``column_sum`` (78 for 784 inputs in the paper, i.e. 0.1 per input).

Units: ms, mV, Hz; conductances and weights are dimensionless (multiples of the leak
conductance), as in the original code (``ge*nS`` with ``tau*dv/dt`` in volts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from neuro.models._common import check_finite, check_non_negative, check_positive

__all__ = ["DiehlCookParams", "DIEHL_COOK_2015_PARAMS", "diehl_cook_params_for"]


@dataclass(frozen=True)
class DiehlCookParams:
    """Every constant of the Diehl & Cook network; defaults are the paper's (MNIST, 784 inputs).

    Attributes
    ----------
    n_input : input neurons (pixels).
    n_exc : excitatory neurons (= inhibitory neurons): 100, 400, 1600, 6400 in the paper.
    dt_ms : integration step, ms (0.5 in the original code).
    t_present_ms, t_rest_ms : presentation and rest time of one example, ms.
    max_rate_hz : input rate of a pixel of intensity 1 at the starting intensity, Hz.
    min_spikes : fewest excitatory spikes an example must evoke; below it the intensity is
        raised by ``intensity_step`` and the example shown again (at most ``max_retries``).
    E_rest_exc, V_reset_exc, V_th_exc, tau_m_exc, t_ref_exc : excitatory membrane (mV, ms).
    theta_offset : the 20 mV offset of the original threshold ``v > V_th + theta - offset``.
    theta_init : initial threshold adaptation, mV (20, so the first threshold is ``V_th``).
    theta_plus, tau_theta_ms : adaptive threshold increment (mV) and decay (ms).
    E_rest_inh, V_reset_inh, V_th_inh, tau_m_inh, t_ref_inh : inhibitory membrane (mV, ms).
    E_exc, E_inh_on_exc, E_inh_on_inh : reversal potentials, mV (excitatory synapses 0 mV,
        inhibition onto excitatory neurons -100 mV, onto inhibitory neurons -85 mV).
    tau_ge_ms, tau_gi_ms : conductance decay time constants, ms.
    w_init_min, w_init_max : input weights start uniform in this range.
    w_max : upper bound of the input weights (the lower bound is 0).
    w_exc_inh, w_inh_exc : fixed weights of the one-to-one and the lateral inhibition.
    nu_pre, nu_post : STDP learning rates (depression at pre, potentiation at post spikes).
    tau_pre_ms, tau_post1_ms, tau_post2_ms : trace time constants, ms.
    column_sum : target sum of each excitatory neuron's input weights after normalisation.
    """

    n_input: int = 784
    n_exc: int = 400
    dt_ms: float = 0.5
    t_present_ms: float = 350.0
    t_rest_ms: float = 150.0
    max_rate_hz: float = 63.75
    min_spikes: int = 5
    intensity_step: float = 1.0
    max_retries: int = 10
    E_rest_exc: float = -65.0
    V_reset_exc: float = -65.0
    V_th_exc: float = -52.0
    tau_m_exc: float = 100.0
    t_ref_exc: float = 5.0
    theta_offset: float = 20.0
    theta_init: float = 20.0
    theta_plus: float = 0.05
    tau_theta_ms: float = 1e7
    E_rest_inh: float = -60.0
    V_reset_inh: float = -45.0
    V_th_inh: float = -40.0
    tau_m_inh: float = 10.0
    t_ref_inh: float = 2.0
    E_exc: float = 0.0
    E_inh_on_exc: float = -100.0
    E_inh_on_inh: float = -85.0
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    w_init_min: float = 0.003
    w_init_max: float = 0.3
    w_max: float = 1.0
    w_exc_inh: float = 10.4
    w_inh_exc: float = 17.0
    nu_pre: float = 0.0001
    nu_post: float = 0.01
    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    column_sum: float = 78.0

    def __post_init__(self) -> None:
        check_finite(self)
        for name in ("n_input", "n_exc", "max_retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"DiehlCookParams.{name} must be a positive integer, got {value!r}"
                )
        if not isinstance(self.min_spikes, int) or self.min_spikes < 0:
            raise ValueError(
                f"DiehlCookParams.min_spikes must be an integer >= 0, got {self.min_spikes!r}"
            )
        for name in ("dt_ms", "t_present_ms", "max_rate_hz", "tau_m_exc", "tau_theta_ms",
                     "tau_m_inh", "tau_ge_ms", "tau_gi_ms", "w_max", "tau_pre_ms",
                     "tau_post1_ms", "tau_post2_ms", "column_sum", "intensity_step"):
            check_positive(self, name)
        for name in ("t_rest_ms", "t_ref_exc", "t_ref_inh", "theta_plus", "theta_init",
                     "w_init_min", "w_exc_inh", "w_inh_exc", "nu_pre", "nu_post"):
            check_non_negative(self, name)
        if not self.w_init_min <= self.w_init_max <= self.w_max:
            raise ValueError(
                "DiehlCookParams needs 0 <= w_init_min <= w_init_max <= w_max, got "
                f"{self.w_init_min}, {self.w_init_max}, {self.w_max}"
            )
        if self.V_reset_exc >= self.V_th_exc or self.V_reset_inh >= self.V_th_inh:
            raise ValueError("DiehlCookParams: each reset potential must lie below its threshold")
        fastest = min(self.tau_ge_ms, self.tau_gi_ms, self.tau_m_inh)
        if self.dt_ms > fastest:
            raise ValueError(
                f"DiehlCookParams.dt_ms = {self.dt_ms} ms is larger than the fastest time constant "
                f"({fastest} ms); use dt_ms <= {fastest}"
            )
        steps = self.t_present_ms / self.dt_ms
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f"DiehlCookParams.t_present_ms = {self.t_present_ms} must be a whole number of "
                f"steps of dt_ms = {self.dt_ms}"
            )

    @property
    def present_steps(self) -> int:
        """Integration steps in one presentation."""
        return int(round(self.t_present_ms / self.dt_ms))


#: The paper's network for MNIST with 400 excitatory neurons.
DIEHL_COOK_2015_PARAMS = DiehlCookParams()


def diehl_cook_params_for(n_input: int, n_exc: int, **overrides: float) -> DiehlCookParams:
    """The paper's constants for another input size: ``column_sum`` keeps its 0.1 per input
    (78/784) unless given, so the mean input weight is the paper's."""
    if "column_sum" not in overrides:
        overrides["column_sum"] = DIEHL_COOK_2015_PARAMS.column_sum * n_input / 784.0
    return replace(DIEHL_COOK_2015_PARAMS, n_input=n_input, n_exc=n_exc, **overrides)
