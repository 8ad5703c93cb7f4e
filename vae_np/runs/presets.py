"""Training presets that reproduce published VAE setups, and the learning-rate schedules they use.

A preset is a named set of ``train`` settings. Settings given on the command line override the
preset's; settings neither names take the values in :data:`DEFAULTS`.

=================  ==========================================================================
preset             source
=================  ==========================================================================
pytorch-example    pytorch/examples, ``vae/main.py`` (github.com/pytorch/examples, folder vae)
kingma2013-mnist   Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014
                   (arXiv:1312.6114), Sec. 5 and Appendix C
kingma2013-frey    the same paper, its Frey Face experiment
iwae-vae           Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016
                   (arXiv:1509.00519), Sec. 5: the VAE with one stochastic layer, k = 1
iwae-2layer        the same paper and section: two stochastic layers, k = 1, the same schedule
=================  ==========================================================================
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

DEFAULTS = dict(
    dataset="sprites", hidden=(256,), z_dim=8, activation="relu", likelihood="bernoulli",
    sigma_param="logvar", decoder_mean="identity", init_std=None, decoder_sigma_min=0.0,
    optimizer="adam", lr=1e-3, optimizer_options={}, lr_schedule="constant",
    epochs=100, batch_size=128, k=1, schedule="joint", dtype="float32", seed=0, objective="elbo",
    estimator="standard", prior="normal", pseudo_inputs=None, z2_dim=None, hidden2=None,
    warmup_epochs=0, free_bits=None,
)
"""Settings of a plain ``vae-np train``: a 784-256-8 ReLU VAE on the sprites (about 2 minutes on
2 quiet cores). prior, pseudo_inputs: p(z) (N(0, I), or the VampPrior with that many
pseudo-inputs); z2_dim, hidden2: a second stochastic layer (None: one layer; hidden2 None: the
two-layer prior's own default widths, 100 100); warmup_epochs, free_bits: the ELBO's KL options
(0 and None: none)."""

LR_SCHEDULES = ("constant", "burda2016")


@dataclass(frozen=True)
class Preset:
    """A published setup: the settings that reproduce it and where they come from.

    Attributes
    ----------
    name : str       the ``--preset`` name
    source : str     the publication or repository the settings are taken from
    summary : str    one line: data, architecture, optimizer
    settings : dict  train settings (the keys of :data:`DEFAULTS`) that differ from the defaults
    reference : str  the published number to compare with, if any
    notes : str      where this implementation departs from the source
    """

    name: str
    source: str
    summary: str
    settings: dict = field(default_factory=dict)
    reference: str = ""
    notes: str = ""


PRESETS = {p.name: p for p in (
    Preset(
        "pytorch-example",
        source="pytorch/examples, vae/main.py (github.com/pytorch/examples/tree/main/vae)",
        summary="grey-level MNIST / 255, 784-400-20 ReLU, Bernoulli on logits, Adam 1e-3, "
                "batch 128, 10 epochs",
        settings=dict(dataset="mnist", hidden=(400,), z_dim=20, activation="relu",
                      likelihood="bernoulli", sigma_param="logvar", optimizer="adam", lr=1e-3,
                      batch_size=128, epochs=10),
        reference="test loss after epoch 10: about 105.6 nats per example",
        notes="PyTorch sums the loss over the batch, here it is averaged; Adam is invariant to "
              "that scale up to its eps."),
    Preset(
        "kingma2013-mnist",
        source="Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014 (arXiv:1312.6114), "
               "Sec. 5 and App. C",
        summary="MNIST, 784-500-20 tanh, Bernoulli decoder, N(0, 0.01) init, Adagrad 0.02, "
                "M = 100, L = 1",
        settings=dict(dataset="mnist", hidden=(500,), z_dim=20, activation="tanh",
                      likelihood="bernoulli", sigma_param="logvar", init_std=0.01,
                      optimizer="adagrad", lr=0.02, batch_size=100, k=1, epochs=100),
        notes="The paper picks the Adagrad step from {0.01, 0.02, 0.1} and z_dim from "
              "{3, 5, 10, 20, 200}, trains to 1e8 examples (about 1700 epochs; pass --epochs) and "
              "adds a N(0, I) prior on the weights (weight decay), which is not implemented."),
    Preset(
        "kingma2013-frey",
        source="Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014 (arXiv:1312.6114), "
               "Sec. 5 and App. C.2",
        summary="Frey Face, 560-200-2 tanh, Gaussian decoder with learned variance and a "
                "sigmoid-squashed mean, N(0, 0.01) init, Adagrad 0.01, M = 100, L = 1",
        settings=dict(dataset="frey", hidden=(200,), z_dim=2, activation="tanh",
                      likelihood="gaussian-learned", decoder_mean="sigmoid", sigma_param="logvar",
                      init_std=0.01, decoder_sigma_min=0.01, optimizer="adagrad", lr=0.01,
                      batch_size=100, k=1, epochs=1000),
        notes="z_dim 2 (the paper also uses 5, 10, 20) gives its Figure 4a manifold. The decoder "
              "sigma is kept >= 0.01 (decoder_sigma_min), a guard the paper does not mention."),
    Preset(
        "iwae-vae",
        source="Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 "
               "(arXiv:1509.00519), Sec. 5",
        summary="dynamically binarized MNIST, 784-200-200-50 tanh, Adam (0.9, 0.999, eps 1e-4), "
                "batch 20, 3^i passes at lr 1e-3 * 10^(-i/7) for i = 0..7 (3280 passes)",
        settings=dict(dataset="dynamic-mnist", hidden=(200, 200), z_dim=50, activation="tanh",
                      likelihood="bernoulli", sigma_param="logvar", optimizer="adam", lr=1e-3,
                      optimizer_options={"betas": (0.9, 0.999), "eps": 1e-4},
                      lr_schedule="burda2016", batch_size=20, k=1, epochs=3280),
        reference="test -ln p(x) (IWAE bound, k = 5000): 86.76 nats",
        notes="--passes N (= --epochs N) stops the schedule early. Weights start from "
              "U(+-1/sqrt(fan_in)), not the paper's Glorot & Bengio heuristic."),
    Preset(
        "iwae-2layer",
        source="Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 "
               "(arXiv:1509.00519), Sec. 5",
        summary="dynamically binarized MNIST, two stochastic layers: q(z1|x) 784-200-200 tanh -> "
                "z1 (100), q(z2|z1) 100-100-100 -> z2 (50), p(z1|z2) 50-100-100, p(x|z1) "
                "100-200-200 -> Bernoulli; Adam (0.9, 0.999, eps 1e-4), batch 20, the schedule "
                "of iwae-vae (3280 passes)",
        settings=dict(dataset="dynamic-mnist", hidden=(200, 200), z_dim=100, z2_dim=50,
                      hidden2=(100, 100), activation="tanh", likelihood="bernoulli",
                      sigma_param="logvar", optimizer="adam", lr=1e-3,
                      optimizer_options={"betas": (0.9, 0.999), "eps": 1e-4},
                      lr_schedule="burda2016", batch_size=20, k=1, epochs=3280),
        reference="test -ln p(x) (IWAE bound, k = 5000): VAE 85.33, IWAE k = 5 83.89, "
                  "k = 50 82.90 nats",
        notes="--passes N (= --epochs N) stops the schedule early, as for iwae-vae; --objective "
              "iwae --k 5 gives the paper's IWAE row. The top KL of the ELBO is taken in closed "
              "form given z1 (the same ELBO in expectation). Weights start from "
              "U(+-1/sqrt(fan_in))."),
)}
"""Every preset by its ``--preset`` name: a dict str -> :class:`Preset`."""


def resolve(preset=None, overrides=None) -> dict:
    """The complete train settings: defaults, then the preset's, then ``overrides``.

    Parameters
    ----------
    preset : str or None   a key of :data:`PRESETS`
    overrides : dict       settings given explicitly (None values are ignored)

    Returns
    -------
    dict with every key of :data:`DEFAULTS`

    Raises
    ------
    ValueError  for an unknown preset name or setting
    """
    settings = dict(DEFAULTS, optimizer_options={})
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {preset!r}")
        settings.update(PRESETS[preset].settings)
        settings["optimizer_options"] = dict(settings["optimizer_options"])
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown train setting(s) {unknown}")
    if overrides.get("optimizer", settings["optimizer"]) != settings["optimizer"]:
        settings["optimizer_options"] = {}   # the preset's options belong to its optimizer
    options = {**settings["optimizer_options"], **overrides.pop("optimizer_options", {})}
    settings.update(overrides, optimizer_options=options)
    settings["hidden"] = tuple(settings["hidden"])
    if settings["hidden2"] is not None:
        settings["hidden2"] = tuple(settings["hidden2"])
    return settings


def learning_rate(schedule, base_lr, epoch) -> float:
    """The learning rate of epoch ``epoch`` (1-based) under a schedule.

    ``"constant"``: base_lr. ``"burda2016"`` (Burda et al. 2016, Sec. 5): stage i = 0, 1, 2, ...
    lasts 3^i passes and uses ``base_lr * 10^(-i/7)``; stage i ends after (3^(i+1) - 1)/2 passes, so
    stages 0..7 take 3280 passes (later epochs continue the same formula).

    Raises
    ------
    ValueError  for an unknown schedule or an epoch < 1
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {schedule!r}")
    if int(epoch) < 1:
        raise ValueError(f"epoch must be >= 1, got {epoch}")
    if schedule == "constant":
        return float(base_lr)
    stage = 0
    while (3 ** (stage + 1) - 1) // 2 < epoch:
        stage += 1
    return float(base_lr) * 10.0 ** (-stage / 7)


def help_text(width=79) -> str:
    """One paragraph per preset, for ``vae-np train --help``."""
    lines = ["presets (--preset NAME; explicit options override the preset):"]
    for p in PRESETS.values():
        for text, indent in ((f"{p.name}: {p.summary}.", "  "),
                             (f"source: {p.source}.", "      "),
                             (f"published: {p.reference}." if p.reference else "", "      ")):
            if text:
                lines += textwrap.wrap(text, width, initial_indent=indent,
                                       subsequent_indent=indent + "  ")
    return "\n".join(lines)
