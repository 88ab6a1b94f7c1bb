"""Models and losses behave as documented."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnistx.errors import UserError
from mnistx.models.losses import MSE, NLL, CrossEntropy
from mnistx.models.networks import CNN, MLP


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(UserError) as e:
        MLP(activation="swish")
    assert "swish" in str(e.value) and "relu" in str(e.value) and "rrelu" in str(e.value)


def test_cnn_too_deep_for_image_is_a_user_error():
    with pytest.raises(UserError, match="below 1 pixel"):
        CNN(channels=[8, 8, 8, 8])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_pool_first_without_batchnorm_is_the_same_function(activation):
    """Max-pooling commutes with a non-decreasing activation, so the faster order changes
    nothing when there is no BatchNorm between them (conv weights sit at the same indices)."""
    torch.manual_seed(0)
    kw = dict(channels=[4, 8], convs_per_block=2, padding=1, activation=activation)
    last, first = CNN(**kw), CNN(pool_first=True, **kw)
    first.load_state_dict(last.state_dict())
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(first(x), last(x))
    # ... and the order really differs: pooling right after the block's 2nd conv, not last.
    assert type(first.features[3]) is torch.nn.MaxPool2d
    assert type(last.features[4]) is torch.nn.MaxPool2d


def test_pool_first_with_batchnorm_normalises_the_pooled_map():
    net = CNN(channels=[4, 8], kernel_size=5, batch_norm=True, pool_first=True)
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 2
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_bad_hidden_sizes():
    with pytest.raises(UserError, match="positive integers"):
        MLP(hidden_sizes=[128, 0])


def test_prelu_layers_do_not_share_weights():
    net = MLP(activation="prelu")
    prelus = [m for m in net.modules() if isinstance(m, torch.nn.PReLU)]
    assert len(prelus) == 2 and prelus[0] is not prelus[1]


def test_losses_match_their_definitions():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert NLL()(logits, y) == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    expected = ((logits.softmax(1) - F.one_hot(y, 10).float()) ** 2).mean()
    assert MSE()(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)
    smooth = CrossEntropy(label_smoothing=0.1)(logits, y)
    assert smooth.item() == pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.1).item())
    assert smooth.item() != pytest.approx(CrossEntropy()(logits, y).item())


def test_bce_is_one_vs_rest_binary_cross_entropy_on_sigmoids():
    from mnistx.models.losses import BCE

    logits, y = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([2])
    p = torch.sigmoid(logits[0])
    by_hand = -(torch.log(1 - p[0]) + torch.log(1 - p[1]) + torch.log(p[2])) / 3
    assert BCE()(logits, y).item() == pytest.approx(by_hand.item(), rel=1e-6)
