"""The flow ops (vae_np.ops.flows) and the flow chain (vae_np.flow_chain) against numerical
derivatives in float64."""
import numpy as np

from vae_np import flow_chain
from vae_np.ops import flows
from vae_np.testing import assert_backward


def _stacked(forward, backward):
    """An op returning (f, logdet, cache) as one (N, D + 1) output, for assert_backward."""
    def fwd(*inputs):
        f, logdet, cache = forward(*inputs)
        return np.concatenate([f, logdet[:, None]], axis=1), cache

    def bwd(dout, cache):
        return backward(dout[:, :-1], dout[:, -1], cache)
    return fwd, bwd


def test_smoke_one_random_case():
    rng = np.random.default_rng(0)
    N, D = 3, 2
    u, w, z = (rng.standard_normal((N, D)) for _ in range(3))
    b = rng.standard_normal(N)
    assert_backward(flows.planar_u_hat_forward, flows.planar_u_hat_backward, u, w,
                    complex_step=True)
    u_hat, _ = flows.planar_u_hat_forward(u, w)
    assert_backward(*_stacked(flows.planar_forward, flows.planar_backward), z, u_hat, w, b,
                    complex_step=True)
    alpha, beta, _ = flows.radial_params_forward(rng.standard_normal(N), rng.standard_normal(N))
    assert_backward(*_stacked(flows.radial_forward, flows.radial_backward), z,
                    rng.standard_normal((N, D)), alpha, beta, complex_step=True)
    for kind in flow_chain.FLOW_KINDS:
        raws = [rng.standard_normal((N, flow_chain.raw_size(kind, D))) for _ in range(2)]

        def fwd(z0, *raws):
            zs, logdets, caches = flow_chain.chain_forward(kind, z0, list(raws))
            return np.concatenate([zs[-1], sum(logdets)[:, None]], axis=1), caches

        def bwd(dout, caches):
            dz0, draws = flow_chain.chain_backward(dout[:, :-1], dout[:, -1], caches)
            return (dz0, *draws)
        assert_backward(fwd, bwd, z, *raws, complex_step=True)
