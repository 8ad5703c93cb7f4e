"""Bad options for every command of ``python -m vae_np``: exit status 2 and one line on stderr
naming ``word`` (see ``tests/cli/entry_points.py``)."""
from __future__ import annotations

from table_common import CliCase


# ------------------------------------------------------------------------------ command line
CLI_CASES: list[CliCase] = []


def cli(command, kind, word, *argv):
    CLI_CASES.append(CliCase(command, kind, (command,) + argv, word))


SMALL = ("--x-dim", "3", "--hidden", "2", "--z-dim", "1")
for _kind, _word, _argv in [
    ("type", "--x-dim", ("--x-dim", "ten")),
    ("int range", "x_dim", ("--x-dim", "-1")),
    ("int range", "x_dim", ("--x-dim", "0")),
    ("int range", "hidden", ("--hidden", "-3")),
    ("int range", "z_dim", ("--z-dim", "-1")),
    ("unknown name", "--activation", ("--activation", "swish")),
    ("unknown name", "--likelihood", ("--likelihood", "poisson")),
    ("unknown name", "--sigma-param", ("--sigma-param", "exp")),
    ("int range", "batch", SMALL + ("--batch", "0")),
    ("int range", "batch", SMALL + ("--batch", "-2")),
    ("int range", "k", SMALL + ("--k", "0")),
    ("type", "--k", ("--k", "two")),
    ("int range", "coords", SMALL + ("--coords", "0")),
    ("int range", "directions", SMALL + ("--directions", "0")),
    ("range", "tol", SMALL + ("--tol", "-1")),
    ("nan/inf", "tol", SMALL + ("--tol", "nan")),
    ("type", "--tol", ("--tol", "abc")),
    ("int range", "seed", SMALL + ("--seed", "-1")),
    ("int range", "memory", ("--x-dim", "100000000", "--hidden", "100000000")),
    ("int range", "too big", ("--x-dim", "1000000000", "--hidden", "1000000000")),
    ("unknown name", "unrecognized", ("--bogus",)),
    ("unknown name", "--flow", ("--flow", "radial ", "--flow-length", "1")),
    ("type", "--flow-length", ("--flow-length", "2")),
    ("int range", "--z2-dim", SMALL + ("--z2-dim", "0")),
    ("int range", "--pseudo-inputs", SMALL + ("--prior", "vamp", "--pseudo-inputs", "0")),
    ("unknown name", "--prior", SMALL + ("--prior", "gauss")),
    ("type", "--pseudo-inputs applies to --prior vamp", SMALL + ("--pseudo-inputs", "2")),
    ("type", "--hidden2 applies to a second stochastic layer", SMALL + ("--hidden2", "3")),
]:
    cli("gradcheck", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("unknown name", "nope", ("--claim", "nope")),
    ("unknown name", "kl_gradient.library", ("--claim", "kl_gradient.typo")),
    ("int range", "seed", ("--claim", "kl_gradient", "--seed", "-1")),
    ("type", "--seed", ("--seed", "x")),
    ("file", "--json", ("--claim", "kl_gradient", "--json", "{tmp}/no/such/dir/out.json")),
    ("file", "--markdown", ("--claim", "kl_gradient", "--markdown", "{tmp}")),
]:
    cli("verify", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("int range", "seed", ("--seed", "-1")),
    ("type", "--seed", ("--seed", "1.5")),
    ("unknown name", "unrecognized", ("--bogus",)),
    ("unknown name", "--flow", ("--flow", "planer", "--flow-length", "2")),
    ("type", "--flow-length", ("--flow-length", "2")),     # --flow alone takes length 2
    ("int range", "--flow-length", ("--flow", "radial", "--flow-length", "-1")),
    ("int range", "--z2-dim", ("--z2-dim", "0")),
    ("int range", "--pseudo-inputs", ("--prior", "vamp", "--pseudo-inputs", "0")),
    ("unknown name", "--prior", ("--prior", "gauss")),
    ("type", "--pseudo-inputs applies to --prior vamp", ("--pseudo-inputs", "2")),
    ("type", "--hidden2 applies to a second stochastic layer", ("--hidden2", "3")),
    ("type", "--hidden2", ("--z2-dim", "1", "--hidden2", "0")),
]:
    cli("explain", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("unknown name", "unrecognized", ("--bogus",)),
    ("unknown name", "unrecognized", ("extra",)),
]:
    cli("lecture", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("int range", "--epochs", ("--epochs", "0")),
    ("int range", "--epochs", ("--epochs", "-3")),
    ("type", "--batch-size", ("--batch-size", "x")),
    ("int range", "--batch-size", ("--batch-size", "0")),
    ("unknown name", "--dataset", ("--dataset", "cifar")),
    ("unknown name", "--activation", ("--activation", "swish")),
    ("unknown name", "--optimizer", ("--optimizer", "lbfgs")),
    ("unknown name", "--preset", ("--preset", "nope")),
    ("unknown name", "--schedule", ("--schedule", "nope")),
    ("unknown name", "--dtype", ("--dtype", "float16")),
    ("range", "--lr", ("--lr", "-1")),
    ("nan/inf", "--lr", ("--lr", "nan")),
    ("nan/inf", "--lr", ("--lr", "inf")),
    ("int range", "--k", ("--k", "0")),
    ("int range", "--z-dim", ("--z-dim", "0")),
    ("int range", "--hidden", ("--hidden", "0")),
    ("int range", "--limit", ("--limit", "-5")),
    ("int range", "--seed", ("--seed", "-1")),
    ("range", "--init-std", ("--init-std", "-1")),
    ("range", "--optim-eps", ("--optim-eps", "-1")),
    ("file", "Frey", ("--dataset", "frey", "--data-dir", "{tmp}/nowhere", "--out", "{tmp}/run")),
    ("file", "run directory", ("--resume", "{tmp}/no-run")),
    ("type", "--lr", ("--resume", "{tmp}/no-run", "--lr", "0.1")),
    ("unknown name", "--flow", ("--flow", "planer", "--flow-length", "2")),
    ("type", "--flow-length", ("--flow", "planar", "--flow-length", "two")),
    ("int range", "--flow-length", ("--flow", "planar", "--flow-length", "-1")),
    ("type", "--flow and --flow-length", ("--flow-length", "3")),
    ("unknown name", "--estimator dreg", ("--flow", "planar", "--flow-length", "2", "--objective",
                                          "iwae", "--estimator", "dreg")),
    # the richer models and the ELBO's KL options
    ("unknown name", "--preset", ("--preset", "iwae-3layer")),
    ("range", "--free-bits", ("--free-bits", "-1")),
    ("nan/inf", "--free-bits", ("--free-bits", "nan")),
    ("type", "--free-bits", ("--free-bits", "lots")),
    ("int range", "--warmup-epochs", ("--warmup-epochs", "-1")),
    ("type", "--warmup-epochs", ("--warmup-epochs", "2.5")),
    ("int range", "--pseudo-inputs", ("--prior", "vamp", "--pseudo-inputs", "0")),
    ("int range", "--z2-dim", ("--z2-dim", "0")),
    ("int range", "--hidden2", ("--z2-dim", "2", "--hidden2", "0")),
    ("unknown name", "--prior", ("--prior", "gauss")),
    ("type", "--warmup-epochs applies to --objective elbo", ("--warmup-epochs", "3",
                                                            "--objective", "iwae")),
    ("type", "--free-bits applies to --objective elbo", ("--free-bits", "0", "--objective",
                                                        "iwae")),
    ("type", "--prior vamp does not fit --flow planar", ("--prior", "vamp", "--pseudo-inputs",
                                                         "5", "--flow", "planar",
                                                         "--flow-length", "2")),
    ("type", "--pseudo-inputs applies to --prior vamp", ("--pseudo-inputs", "5")),
    ("type", "--pseudo-inputs applies to --prior vamp", ("--prior", "normal", "--pseudo-inputs",
                                                         "5")),
    ("type", "--prior vamp needs --pseudo-inputs", ("--prior", "vamp")),
    ("type", "--hidden2 applies to a second stochastic layer", ("--hidden2", "8")),
    ("type", "--estimator dreg does not fit --z2-dim", ("--preset", "iwae-2layer", "--objective",
                                                        "iwae", "--k", "5", "--estimator",
                                                        "dreg")),
    ("type", "--estimator dreg does not fit --prior vamp", ("--prior", "vamp", "--pseudo-inputs",
                                                            "5", "--objective", "iwae",
                                                            "--estimator", "dreg")),
    ("type", "do not apply to --model vqvae", ("--model", "vqvae", "--prior", "vamp",
                                               "--pseudo-inputs", "3")),
    ("type", "--warmup-epochs does not apply to --model vqvae", ("--model", "vqvae",
                                                                 "--warmup-epochs", "2")),
    ("type", "--z2-dim", ("--resume", "{tmp}/no-run", "--z2-dim", "2")),
]:
    cli("train", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("int range", "--iwae-k", ("{tmp}", "--iwae-k", "0")),
    ("int range", "--elbo-k", ("{tmp}", "--elbo-k", "-1")),
    ("range", "--threshold", ("{tmp}", "--threshold", "-1")),
    ("type", "--max-mb", ("{tmp}", "--max-mb", "abc")),
    ("unknown name", "--dtype", ("{tmp}", "--dtype", "float16")),
    ("int range", "--seed", ("{tmp}", "--seed", "-1")),
    ("file", "config.json", ("{tmp}",)),
]:
    cli("evaluate", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("int range", "--n", ("{tmp}", "--n", "0")),
    ("type", "--n", ("{tmp}", "--n", "x")),
    ("int range", "--seed", ("{tmp}", "--seed", "-1")),
]:
    cli("sample", _kind, _word, *_argv)
for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("int range", "--n", ("{tmp}", "--n", "-1")),
    ("type", "--seed", ("{tmp}", "--seed", "x")),
]:
    cli("reconstruct", _kind, _word, *_argv)

for _kind, _word, _argv in [
    ("file", "run directory", ("{tmp}/no-run",)),
    ("file", "config.json", ("{tmp}",)),
    ("int range", "--epochs", ("{tmp}", "--epochs", "0")),
    ("int range", "--hidden", ("{tmp}", "--hidden", "0")),
    ("range", "--lr", ("{tmp}", "--lr", "0")),
    ("unknown name", "--dtype", ("{tmp}", "--dtype", "float16")),
]:
    cli("fit-prior", _kind, _word, *_argv)
