import pytest
import torch


@pytest.fixture
def float64_default():
    """Run a test under torch's float64 default dtype (so torch.optim's step/mu_product scalars are float64 too)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
