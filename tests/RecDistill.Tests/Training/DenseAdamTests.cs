using RecDistill.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class DenseAdamTests
{
    /// <summary>
    /// A matrix, a vector, a 3-d tensor (the experts' stacked weights) and a second vector, against
    /// Adam written out from its formula. The third parameter has no gradient at some steps after
    /// having had one: Adam with zeroed gradients (torch's zero_grad) steps it with zeros, and DenseAdam,
    /// whose ZeroGrad drops the gradient, with zeros too. The fourth has no gradient before step 2:
    /// neither moves it or counts those steps, as torch's Adam skips a parameter without a gradient.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Matches_Adam_with_L2_including_steps_without_a_gradient(int threads)
    {
        using var _ = TestData.Threads(threads);
        manual_seed(5);
        var shapes = new[] { new long[] { 40, 19 }, new long[] { 7 }, new long[] { 3, 5, 6 }, new long[] { 4 } };
        var inits = shapes.Select(s => randn(s)).ToArray();
        var ours = inits.Select(t => new Parameter(t.clone())).ToArray();
        var reference = inits.Select(t => new ReferenceAdam(t, lr: 0.01, weightDecay: 0.1)).ToArray();
        using var fused = new DenseAdam(ours, lr: 0.01, weightDecay: 0.1);
        for (int step = 0; step < 6; step++)
        {
            var grads = shapes.Select(s => randn(s)).ToArray();
            fused.ZeroGrad();
            for (int k = 0; k < shapes.Length; k++)
            {
                bool none = (k == 2 && step is not (0 or 1 or 4)) || (k == 3 && step < 2);
                if (none)
                {
                    if (reference[k].Steps > 0) reference[k].Step(zeros(shapes[k]));
                    continue;
                }
                (ours[k] * grads[k]).sum().backward();
                reference[k].Step(grads[k]);
            }
            if (step == 2)
            {
                using var dropped = ours[2].grad;
                Assert.Null(dropped); // handed over, not added to zeros
            }
            fused.Step();
        }
        for (int k = 0; k < shapes.Length; k++)
        {
            Assert.Equal(shapes[k], ours[k].shape);
            Assert.True(reference[k].Matches(ours[k], rtol: 1e-5, atol: 1e-6), $"parameter {k} differs by up to {reference[k].MaxDifference(ours[k])}");
        }
        Assert.Equal(new long[] { 6, 6, 6, 4 }, reference.Select(r => r.Steps));
        Assert.Equal(new List<long> { 6, 6, 6, 4 }, fused.Steps);
    }
}
