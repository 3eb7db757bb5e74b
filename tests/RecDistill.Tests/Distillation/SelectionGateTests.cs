using RecDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

public class SelectionGateTests
{
    /// <summary>Selection, value and logits gradient against the Gumbel-softmax written out in libtorch operations.</summary>
    [Theory]
    [InlineData(1.0)]
    [InlineData(0.3)]
    [InlineData(0.05)] // the annealing floor: sharp softmax, large z / tau
    public void Matches_the_gumbel_softmax_gate_in_libtorch(double tau)
    {
        manual_seed(12);
        int n = 240, experts = 7;
        var logits0 = randn(n, experts) * 3;
        var u = rand(n, experts).clamp_(1e-10, 1 - 1e-10);
        var w = randn(n, 1);

        var logits = logits0.clone().requires_grad_(true);
        var (gate, selected) = SelectionGate.Compute(logits, u, tau);
        (gate * w).sum().backward();

        var reference = logits0.clone().requires_grad_(true);
        var probs = ((reference + -(-u.log()).log()) / tau).softmax(-1);
        var want = probs.argmax(-1);
        var g = probs.gather(1, want.unsqueeze(1));
        ((g / g.detach()) * w).sum().backward();

        Assert.True(selected.equal(want).all().item<bool>(), "selected experts");
        Assert.True(gate.equal(ones(n, 1)).all().item<bool>(), "the gate's value is 1");
        Assert.True(logits.grad!.allclose(reference.grad!, rtol: 1e-4, atol: 1e-5),
            $"logits gradient: max difference {(logits.grad! - reference.grad!).abs().max().item<float>()}");
    }

    [Fact]
    public void Rejects_noise_of_another_shape_and_a_non_positive_temperature()
    {
        var logits = randn(4, 3);
        Assert.Throws<ArgumentException>(() => SelectionGate.Compute(logits, rand(4, 2), 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SelectionGate.Compute(logits, rand(4, 3), 0.0));
    }
}
