using RecDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

/// <summary>The C# expert kernel against the projector's libtorch path: values, gradients, dropout masks, threads.</summary>
public class ExpertMlpTests
{
    /// <summary>Output and every gradient (input, experts' weights, selector) of one training step, one path.</summary>
    private static Tensor[] Step(ExpertProjector p, Tensor s, Tensor t, Tensor g, bool kernel, bool selection, int seed)
    {
        using var kernels = KernelSwitch.Use(kernel);
        p.zero_grad();
        var x = s.clone().requires_grad_(true);
        manual_seed(seed); // the same Gumbel noise and dropout seeds for both paths
        var y = selection ? p.forward(x, t) : p.forward(x, null);
        (y * g).sum().backward();
        return new[] { y.detach().clone(), x.grad!.clone() }
            .Concat(p.parameters().Select(q => q.grad is null ? zeros(1) : q.grad.clone())).ToArray();
    }

    [Theory]
    [InlineData(false, 0.0, 1)]
    [InlineData(false, 0.1, 1)] // NKD's projector: the masks equal CounterRandom.Dropout's (tested for their share there)
    [InlineData(false, 0.1, 2)]
    [InlineData(true, 0.0, 1)]  // DE/CPD/HTD's projector
    [InlineData(true, 0.0, 2)]
    public void Kernel_matches_the_libtorch_path_in_value_and_gradients(bool selection, double dropout, int threads)
    {
        if (!Sgemm.IsSupported) return; // the kernel needs AVX-512; the libtorch path runs elsewhere
        using var threadScope = TestData.Threads(threads);
        manual_seed(5);
        int n = 301, dS = 7, dT = 40, experts = selection ? 6 : 3, hidden = 19;
        using var p = new ExpertProjector("p", dS, dT, experts, hidden, dropout,
            selection ? ExpertCombination.TeacherGumbelSelection : ExpertCombination.MeanNormalized);
        p.train();
        var s = randn(n, dS); var t = randn(n, dT); var g = randn(n, dT);
        var kernel = Step(p, s, t, g, true, selection, 11);
        var reference = Step(p, s, t, g, false, selection, 11);
        string[] names = new[] { "output", "input grad" }.Concat(p.named_parameters().Select(q => q.name + " grad")).ToArray();
        Assert.Equal(reference.Length, kernel.Length);
        for (int i = 0; i < kernel.Length; i++)
        {
            Assert.Equal(reference[i].shape, kernel[i].shape);
            Assert.True(kernel[i].allclose(reference[i], rtol: 1e-4, atol: 1e-5),
                $"{names[i]}: max difference {(kernel[i] - reference[i]).abs().max().item<float>()}");
        }
        Assert.True(kernel[1].abs().sum().item<float>() > 0, "the input gradient is not all zero");
    }

    [Theory]
    [InlineData(0.0, 1L << 26)]
    [InlineData(0.0, 7L * 30 * 40)] // 40 rows per chunk: seven chunks
    [InlineData(0.2, 1L << 26)]
    public void Every_expert_on_every_row_equals_each_expert_on_its_own_rows(double dropout, long maxElements)
    {
        // The libtorch path off the CPU against the CPU's. With dropout the two forms draw different
        // masks, so there the test checks only that the dense form trains (finite values, an input gradient).
        manual_seed(4);
        int n = 257, dS = 6, dT = 30, experts = 7, hidden = 11;
        using var p = new ExpertProjector("p", dS, dT, experts, hidden, dropout, ExpertCombination.TeacherGumbelSelection)
            { EveryExpertMaxElements = maxElements };
        p.train();
        var s = randn(n, dS); var t = randn(n, dT) * FixedScalars.Of(3); var g = randn(n, dT);
        Tensor[] Run(bool everyExpert)
        {
            p.EveryExpertOnEveryRow = everyExpert;
            return Step(p, s, t, g, kernel: false, selection: true, seed: 21);
        }
        var dense = Run(true);
        var grouped = Run(false);
        Assert.True(p.forward(s, t).shape.SequenceEqual(new long[] { n, dT }));
        if (dropout > 0)
        {
            foreach (var x in dense) Assert.True(x.isfinite().all().item<bool>());
            Assert.True(dense[1].abs().sum().item<float>() > 0, "no input gradient");
            return;
        }
        for (int i = 0; i < dense.Length; i++)
            Assert.True(dense[i].allclose(grouped[i], rtol: 1e-4, atol: 1e-5),
                $"tensor {i}: max difference {(dense[i] - grouped[i]).abs().max().item<float>()}");
        Assert.True(dense[1].abs().sum().item<float>() > 0, "the input gradient is not all zero");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Without_an_input_gradient_the_weights_still_get_the_libtorch_paths_gradients(bool selection)
    {
        if (!Sgemm.IsSupported) return;
        manual_seed(6);
        using var p = new ExpertProjector("p", 5, 24, 4, 9, 0.0,
            selection ? ExpertCombination.TeacherGumbelSelection : ExpertCombination.MeanNormalized);
        p.train();
        var s = randn(90, 5); var t = randn(90, 24); var g = randn(90, 24);
        Tensor[] Weights(bool kernel)
        {
            using var kernels = KernelSwitch.Use(kernel);
            p.zero_grad();
            manual_seed(13);
            (p.forward(s, selection ? t : null) * g).sum().backward(); // s does not require a gradient
            return p.parameters().Select(q => q.grad!.clone()).ToArray();
        }
        var kernel = Weights(true);
        var reference = Weights(false);
        for (int i = 0; i < kernel.Length; i++)
            Assert.True(kernel[i].allclose(reference[i], rtol: 1e-4, atol: 1e-5), $"parameter {i}");
    }

    [Fact]
    public void Dropout_masks_differ_between_steps_and_evaluation_has_none()
    {
        if (!Sgemm.IsSupported) return;
        manual_seed(3);
        using var p = new ExpertProjector("p", 16, 32, 2, 64, 0.3, ExpertCombination.MeanNormalized);
        p.train();
        var s = randn(500, 16);
        var a = p.forward(s, null);
        var b = p.forward(s, null);
        Assert.False(a.allclose(b), "two training steps drew the same masks");
        p.eval();
        var c = p.forward(s, null);
        var d = p.forward(s, null);
        Assert.True(c.equal(d).all().item<bool>(), "evaluation applies no dropout");
    }

    [Theory]
    [InlineData(false, 0.2)]
    [InlineData(true, 0.2)]
    [InlineData(true, 0.0)]
    public void Results_do_not_depend_on_the_thread_count(bool selection, double dropout)
    {
        if (!Sgemm.IsSupported) return;
        manual_seed(8);
        using var p = new ExpertProjector("p", 12, 50, selection ? 9 : 4, 31, dropout,
            selection ? ExpertCombination.TeacherGumbelSelection : ExpertCombination.MeanNormalized);
        p.train();
        var s = randn(700, 12); var t = randn(700, 50); var g = randn(700, 50);
        Tensor[] one, two;
        using (TestData.Threads(1)) one = Step(p, s, t, g, true, selection, 21);
        using (TestData.Threads(2)) two = Step(p, s, t, g, true, selection, 21);
        // Output, input gradient and the experts' four weight tensors come from the kernel; the selector's
        // gradient comes from libtorch's own products, whose sums may split differently by thread count.
        for (int i = 0; i < 6; i++) Assert.True(one[i].equal(two[i]).all().item<bool>(), $"tensor {i} differs between 1 and 2 threads");
    }
}
