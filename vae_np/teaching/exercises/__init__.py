"""Backprop exercises that grade themselves.

``vae-np exercises init DIR`` writes ``DIR/backprop_exercises.py``: one stub per backward pass of
``vae_np.ops`` (dense, relu, tanh, sigmoid, softplus, sigma_logvar, sigma_softplus, reparameterize,
kl, bernoulli_nll, gaussian_nll), each with the forward equation, the shapes and what the cache
holds, and a last exercise, ``vae_backward``, that assembles the whole VAE backward from those
pieces and is graded against the one-page lecture, ``vae_np.teaching.lecture``. ``vae-np exercises check
FILE`` grades the file: per exercise passed, failed (with the smallest failing example
hypothesis found and a hint when the mistake is a known one) or not attempted; exit status 0
only when every exercise passes.

Python: ``write_stubs(directory)``, ``grade_file(path)`` and ``format_table(results)`` (the
grading needs hypothesis, the ``test`` extra), ``vae_forward(params, x, eps)`` for the last
exercise.
"""
from .assembly import vae_forward
from .stubs import FILENAME, write_stubs

EXERCISE_NAMES = ("dense_backward", "relu_backward", "tanh_backward", "sigmoid_backward",
                  "softplus_backward", "sigma_logvar_backward", "sigma_softplus_backward",
                  "reparameterize_backward", "kl_backward", "bernoulli_nll_backward",
                  "gaussian_nll_backward", "vae_backward")


def grade_file(path):
    """Results of every exercise in the student's file (see ``grading.grade_file``)."""
    from .grading import grade_file as grade
    return grade(path)


def format_table(results, wide=False):
    """The results as ``vae-np exercises check`` prints them: at most 100 columns, each hint
    wrapped under its exercise; ``wide=True``: one line per exercise (``check --wide``)."""
    from .grading import format_table as table
    return table(results, wide=wide)


__all__ = ["write_stubs", "grade_file", "format_table", "vae_forward", "EXERCISE_NAMES",
           "FILENAME"]
