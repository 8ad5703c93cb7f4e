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

Two additions for the priors (``PRIORS`` uses both):

- A *selector* keyword names a family outright: ``VAE(..., prior="vamp", pseudo_inputs=500)``.
  The registry's ``selector`` is that keyword ("prior"); it names a family that does not wrap
  (below), whose options are then filled with their defaults and checked by ``named_options``.
  Keywords that ask for another such family are a ValueError. Without the selector, the
  keywords choose as above. ``VAE.config()`` saves the selector's value (``selected``).
- A *wrapping* family (``Family.wraps = True``: the two-layer prior) is asked for by its own
  keywords (``z2_dim``) and takes the family the selector names (or the keywords ask for, or
  the default) as its top: it receives its own checked options, the selector's value and the
  top family's options (``VAE(..., z2_dim=50, prior="vamp", pseudo_inputs=500)``: two
  stochastic layers whose top prior is a VampPrior).
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
    wraps = False
    """True for a family that takes another family of its registry as its top part (built with
    the selector's value and that family's options; see the module docstring)."""

    @classmethod
    def named_options(cls, **options):
        """The options of a family named by the selector: checked, defaults filled in (a family
        overrides this when an option has no usable default, e.g. the VampPrior's number of
        pseudo-inputs)."""
        checked = cls.check_options(**options)
        return checked if checked is not None else {
            name: options.get(name, default) for name, default in cls.options.items()}

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
    selector : None, or the keyword that names a family outright ("prior"; module docstring)
    """

    def __init__(self, kind, default, selector=None):
        super().__init__(kind)
        self.default = default
        self.selector = selector

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

    def keywords(self) -> set:
        """Every keyword this registry reads: the families' options and the selector."""
        return set(self.option_defaults()) | ({self.selector} if self.selector else set())

    def selected(self, choice):
        """The selector's value for a ``choose`` result (the top family's name under a wrapping
        family), for ``VAE.config()``; None when the registry has no selector."""
        if self.selector is None:
            return None
        name, _, checked = choice
        return checked.get(self.selector, name)

    def choose(self, options):
        """(name, class, checked options) of the one family ``options`` ask for, or the default
        family with no options when none does. ValueError if they ask for two families (a
        wrapping family and the family it wraps count as one: module docstring)."""
        asked = []
        for name, cls in self.items():
            own = {key: options[key] for key in cls.options if key in options}
            checked = cls.check_options(**own)
            if checked is not None:
                asked.append((name, cls, checked))
        wrappers = [a for a in asked if a[1].wraps]
        leaves = [a for a in asked if not a[1].wraps]
        named = options.get(self.selector) if self.selector else None
        if named is not None:
            tops = [name for name, cls in self.items() if not cls.wraps]
            if not isinstance(named, str) or named not in tops:
                wrapping = "".join(f"; {name!r} is asked for by its options {sorted(cls.options)}"
                                   for name, cls in self.items() if cls.wraps)
                raise ValueError(f"{self.selector} must be one of {tops}, got {named!r}{wrapping}")
            others = [a for a in leaves if a[0] != named]
            if others:
                given = {key: value for _, _, checked in others for key, value in checked.items()}
                raise ValueError(f"the options {given} apply to {self.selector}="
                                 f"{others[0][0]!r}, not {self.selector}={named!r}")
            cls = self[named]
            leaf = (named, cls, cls.named_options(
                **{key: options[key] for key in cls.options if key in options}))
        elif len(leaves) > 1:
            given = {key: value for _, _, checked in leaves for key, value in checked.items()}
            raise ValueError(f"the options {given} ask for more than one {self.kind} "
                             f"({', '.join(name for name, _, _ in leaves)}); choose one")
        else:
            leaf = leaves[0] if leaves else (self.default, self[self.default], {})
        if len(wrappers) > 1:
            given = {key: value for _, _, checked in wrappers for key, value in checked.items()}
            raise ValueError(f"the options {given} ask for more than one {self.kind} "
                             f"({', '.join(name for name, _, _ in wrappers)}); choose one")
        if not wrappers:
            return leaf
        name, cls, checked = wrappers[0]
        top = {self.selector: leaf[0]} if self.selector else {}
        return name, cls, {**checked, **top, **leaf[2]}
