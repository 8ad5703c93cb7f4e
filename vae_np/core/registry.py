"""Registries of the model's extension points, and how a family of components is chosen.

Each kind of component the VAE is built from has one registry here or beside its protocol:

    objective       core.objective.OBJECTIVES / ESTIMATORS   chosen per step by name
    likelihood      core.likelihood.LIKELIHOOD_COMPONENTS    chosen by VAE(likelihood=NAME)
    posterior       core.posterior.POSTERIOR_FAMILIES        chosen by the family's own keywords
    prior           core.prior.PRIORS                        chosen by the family's own keywords

core holds the registries and registers its own components (the design-card model: the negative
ELBO, the likelihoods, the diagonal Gaussian posterior, the standard normal prior). An extension
package registers its components in its ``__init__`` (``vae_np.objectives``, ``vae_np.flows``),
and ``vae_np/__init__.py`` imports those packages, so that every registry is full whatever
submodule is imported first (Python runs ``vae_np/__init__.py`` before any ``vae_np.X``). core
never imports an extension: the dependencies point from the extensions to core.

A *family* (posterior or prior) is chosen by keyword options of ``VAE``: each family declares
``options`` (keyword -> default) and ``check_options(**options)``, which returns None when the
options do not ask for it (all at their defaults) and the checked options otherwise. ``VAE`` passes
every family its own keywords; the one family they ask for is built, the registry's default family
when none is asked for. ``VAE.config()`` saves the options of every registered family (the chosen
family's values, the others' defaults), so ``VAE(**config)`` rebuilds the model. For example the
flow family declares ``flow`` and ``flow_length``: ``VAE(..., flow="planar", flow_length=10)``
chooses it, and a run's config.json holds ``"flow": "planar", "flow_length": 10`` (or nulls for the
Gaussian posterior).
"""
from __future__ import annotations


class Family:
    """What a posterior or prior family has by default: no options, never asked for by them.

    Attributes
    ----------
    options : dict keyword -> default value (the ``VAE`` keywords this family reads)
    label : text for the model's repr ("" for the design-card components)
    """
    options: dict = {}

    @classmethod
    def check_options(cls, **options):
        """None when every option is at its default (this family is not asked for), else the
        options with the defaults filled in. A family overrides this to check its values and
        raise ValueError naming the option and the expected form."""
        if all(options.get(name, default) == default for name, default in cls.options.items()):
            return None
        return {name: options.get(name, default) for name, default in cls.options.items()}


class Registry(dict):
    """name -> component class, filled by ``register`` lines.

    Parameters
    ----------
    kind : what the registry holds, for messages ("objective", "likelihood", ...)
    """

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def register(self, name, cls):
        """Add ``cls`` under ``name`` (returns cls). Registering the same class twice is a no-op;
        another class under a taken name is a ValueError."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if self.get(name) is cls:
            return cls
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered as {self[name]!r}")
        self._check(name, cls)
        self[name] = cls
        return cls

    def _check(self, name, cls):
        """More conditions on a new entry (none here)."""


class FamilyRegistry(Registry):
    """A registry of families (``Family`` subclasses), each chosen by its own ``VAE`` keywords.

    Parameters
    ----------
    kind : "posterior family" or "prior"
    default : the name chosen when no keyword asks for another family
    """

    def __init__(self, kind, default):
        super().__init__(kind)
        self.default = default

    def _check(self, name, cls):
        """A family's options must be its own: two families cannot both read one keyword."""
        taken = {option: other for other, c in self.items() for option in c.options}
        clash = sorted(set(cls.options) & set(taken))
        if clash:
            raise ValueError(f"{self.kind} {name!r} declares option(s) {clash}, already read by "
                             f"{sorted({taken[o] for o in clash})}")

    def option_defaults(self) -> dict:
        """Every registered family's options, keyword -> default, in registration order."""
        return {name: default for cls in self.values() for name, default in cls.options.items()}

    def choose(self, options):
        """(name, class, checked options) of the one family ``options`` ask for, or the default
        family with no options when none does. ValueError if they ask for two families."""
        asked = []
        for name, cls in self.items():
            own = {key: options[key] for key in cls.options if key in options}
            checked = cls.check_options(**own)
            if checked is not None:
                asked.append((name, cls, checked))
        if not asked:
            return self.default, self[self.default], {}
        if len(asked) > 1:
            given = {key: value for _, _, checked in asked for key, value in checked.items()}
            raise ValueError(f"the options {given} ask for more than one {self.kind} "
                             f"({', '.join(name for name, _, _ in asked)}); choose one")
        return asked[0]
