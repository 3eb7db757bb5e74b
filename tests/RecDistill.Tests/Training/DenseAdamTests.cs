using RecDistill.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class DenseAdamTests
{
    /// <summary>A matrix, a vector and a 3-d tensor (the experts' stacked weights); the third parameter has no gradient at some steps.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Matches_torch_Adam_with_L2_including_steps_without_a_gradient(int threads)
    {
        using var _ = TestData.Threads(threads);
        manual_seed(5);
        var shapes = new[] { new long[] { 40, 19 }, new long[] { 7 }, new long[] { 3, 5, 6 } };
        var inits = shapes.Select(s => randn(s)).ToArray();
        var ours = inits.Select(t => new Parameter(t.clone())).ToArray();
        var theirs = inits.Select(t => new Parameter(t.clone())).ToArray();
        using var fused = new DenseAdam(ours, lr: 0.01, weightDecay: 0.1);
        using var reference = optim.Adam(theirs, lr: 0.01, weight_decay: 0.1);
        for (int step = 0; step < 6; step++)
        {
            var grads = shapes.Select(s => randn(s)).ToArray();
            // The third parameter takes part in steps 0, 1 and 4 only: the others leave its gradient null
            // in both optimizers (it is cleared below), so neither moves it nor counts the step.
            bool third = step is 0 or 1 or 4;
            fused.ZeroGrad();
            reference.zero_grad();
            for (int k = 0; k < 3; k++)
            {
                if (k == 2 && !third) { ours[k].grad = null; theirs[k].grad = null; continue; }
                (ours[k] * grads[k]).sum().backward();
                (theirs[k] * grads[k]).sum().backward();
            }
            fused.Step();
            reference.step();
        }
        for (int k = 0; k < 3; k++)
        {
            Assert.Equal(shapes[k], ours[k].shape);
            Assert.True(allclose(ours[k].detach(), theirs[k].detach(), rtol: 1e-5, atol: 1e-6), $"parameter {k} differs");
        }
        Assert.Equal(new List<long> { 6, 6, 3 }, fused.Steps);
    }
}
