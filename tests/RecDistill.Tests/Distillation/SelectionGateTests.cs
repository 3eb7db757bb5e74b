using RecDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

public class SelectionGateTests
{
    /// <summary>Selection, value and gradients against the Gumbel-softmax gate written out in libtorch operations.</summary>
    [Theory]
    [InlineData(1.0)]
    [InlineData(0.3)]
    [InlineData(0.05)] // the annealing floor: sharp softmax, large z / tau
    public void Matches_the_gumbel_softmax_gate_in_libtorch(double tau)
    {
        manual_seed(12);
        int n = 240, experts = 7, d = 19;
        var logits0 = randn(n, experts) * FixedScalars.Of(3);
        var y0 = randn(n, d);
        var u = rand(n, experts).clamp_(FixedScalars.Of(1e-10), FixedScalars.Of(1 - 1e-10));
        var w = randn(n, d);

        var logits = logits0.clone().requires_grad_(true);
        var y = y0.clone().requires_grad_(true);
        var (noisy, selected) = SelectionGate.Choose(logits, u);
        var gated = SelectionGate.Apply(y, logits, noisy, selected, tau);
        (gated * w).sum().backward();

        var reference = logits0.clone().requires_grad_(true);
        var yRef = y0.clone().requires_grad_(true);
        var probs = (reference.Plus(-(-u.log()).log()) / FixedScalars.Of(tau)).softmax(-1);
        var want = probs.argmax(-1);
        var g = probs.gather(1, want.unsqueeze(1));
        ((yRef * (g / g.detach())) * w).sum().backward();

        Assert.True(selected.equal(want).all().item<bool>(), "selected experts");
        Assert.True(gated.equal(y0).all().item<bool>(), "the gate leaves the values as they are");
        Assert.True(y.grad!.allclose(yRef.grad!, rtol: 1e-5, atol: 1e-6), "output gradient");
        // d_gate is a sum of d products of either sign, added in another order than libtorch's, and
        // 1/tau scales it up to 20x: errors are measured against the gradient's scale, not entry by entry.
        float scale = reference.grad!.abs().max().item<float>(), error = (logits.grad! - reference.grad!).abs().max().item<float>();
        Assert.True(error <= 1e-5f * scale, $"logits gradient: max difference {error} at a scale of {scale}");
    }

    [Fact]
    public void Rejects_noise_of_another_shape_and_a_non_positive_temperature()
    {
        var logits = randn(4, 3);
        Assert.Throws<ArgumentException>(() => SelectionGate.Choose(logits, rand(4, 2)));
        var (noisy, selected) = SelectionGate.Choose(logits, rand(4, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SelectionGate.Apply(randn(4, 5), logits, noisy, selected, 0.0));
        Assert.Throws<ArgumentException>(() => SelectionGate.Apply(randn(3, 5), logits, noisy, selected, 1.0));
    }
}
