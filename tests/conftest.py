import pytest
import torch


@pytest.fixture
def float64_default():
    """Run a test under torch's float64 default dtype (so torch.optim's step/mu_product scalars are float64 too)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(params=["gathered", "direct"])
def grads_read(request, monkeypatch):
    """The packed engine with small params' gradients gathered into its flat gradient buffer (as for
    real small params), or read where they are, as for params of DIRECT_MIN_NUMEL elements or more
    (lowered to 6 here, so that most of the tests' small params are direct and one is gathered)."""
    if request.param == "direct":
        from adamlab.optim import _packed

        monkeypatch.setattr(_packed, "DIRECT_MIN_NUMEL", 6)
    return request.param
