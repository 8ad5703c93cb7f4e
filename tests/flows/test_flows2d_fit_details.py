"""Details of vae_np.flows.fit2d that no other test pins: the annealing schedule beta_t of
``fit_flow_2d`` (0.01 + 0.99 t / (anneal T) for t < anneal T, then 1, as its docstring says) and
``sample`` returning exactly n samples when n is not a multiple of its chunk."""
import numpy as np
import pytest

from vae_np.flows import fit2d as flows2d


@pytest.mark.parametrize("iterations, anneal", [(10, 0.5), (7, 0.3), (4, 0.0), (5, 1.0)])
def test_the_annealing_schedule_is_the_documented_ramp(monkeypatch, iterations, anneal):
    seen = []
    original = flows2d.objective

    def spy(theta, kind, length, target, eps, beta=1.0):
        seen.append(beta)
        return original(theta, kind, length, target, eps, beta)
    monkeypatch.setattr(flows2d, "objective", spy)
    flows2d.fit_flow_2d("1", "planar", 1, iterations, np.random.default_rng(0), batch=8,
                        anneal=anneal)
    ramp = anneal * iterations
    expected = [0.01 + 0.99 * t / ramp if t < ramp else 1.0 for t in range(iterations)]
    np.testing.assert_allclose(seen, expected, rtol=0, atol=4 * np.finfo(float).eps)
    assert seen[0] == (0.01 if anneal > 0 else 1.0)


@pytest.mark.parametrize("n, chunk", [(5, 2), (7, 7), (3, 10)])
def test_sample_returns_exactly_n_samples(n, chunk):
    rng = np.random.default_rng(1)
    theta = flows2d.init_params("radial", 2, rng)
    fit = flows2d.FlowFit("2", "radial", 2, theta, np.zeros(1), 0.0)
    z, f = flows2d.sample(fit, n, np.random.default_rng(2), chunk=chunk)
    assert z.shape == (n, 2) and f.shape == (n,)
    z_one, f_one = flows2d.sample(fit, n, np.random.default_rng(2), chunk=n)
    np.testing.assert_array_equal(z, z_one)          # the same stream, whatever the chunking


def test_the_table_names_the_command_that_reproduces_it():
    """The command printed above the KL table parses back to every setting of the run (it left
    out --targets, --kinds, --lengths and --samples, so it named the 24-fit default run)."""
    from vae_np.cli import build_parser
    from vae_np.cli.flows import format_table
    argv = ["flows", "--targets", "3", "1", "--kinds", "radial", "--lengths", "8", "2",
            "--iterations", "17", "--batch", "9", "--lr", "0.02", "--anneal", "0.25",
            "--samples", "500", "--seed", "4"]
    args = build_parser().parse_args(argv)
    args.lengths = sorted(args.lengths)
    results = [{"target": t, "kind": "radial", "length": L, "kl": 0.5, "se": 0.1, "log_z": 1.0}
               for t in args.targets for L in args.lengths]
    table = format_table(results, args)
    printed = table.split("`")[1].split()
    assert printed[:3] == ["python", "-m", "vae_np"]
    again = build_parser().parse_args(printed[3:])
    for key in ("targets", "kinds", "iterations", "batch", "lr", "anneal", "samples", "seed"):
        assert getattr(again, key) == getattr(args, key), key
    assert sorted(again.lengths) == args.lengths


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_a_fit_starts_from_the_documented_q0_and_raw_scale(kind):
    """init_params: q_0 = N(0, I) (mu0 = log_sigma0 = 0) and raw ~ N(0, scale^2) from the rng."""
    theta = flows2d.init_params(kind, 3, np.random.default_rng(6), scale=0.25)
    assert np.array_equal(theta[:4], np.zeros(4))
    expected = 0.25 * np.random.default_rng(6).standard_normal(theta.size - 4)
    np.testing.assert_array_equal(theta[4:], expected)
