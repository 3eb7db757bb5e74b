using RecDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Distillation;

public class CounterRandomTests
{
    [Fact]
    public void Dropout_zeroes_a_share_p_and_scales_the_rest()
    {
        torch.manual_seed(3);
        var x = torch.ones(1000, 300);
        var y = CounterRandom.Dropout(x, 0.1).data<float>().ToArray();
        double zeros = y.Count(v => v == 0f) / (double)y.Length;
        // 300,000 Bernoulli(0.1) draws: standard deviation of the share 0.00055; 5 sigma.
        Assert.InRange(zeros, 0.1 - 0.0028, 0.1 + 0.0028);
        Assert.All(y, v => Assert.True(v == 0f || v == (float)(1 / 0.9)));
    }

    [Fact]
    public void Draws_follow_the_torch_seed_and_not_the_thread_count()
    {
        float[] Draw(int threads)
        {
            using var threadScope = TestData.Threads(threads);
            torch.manual_seed(11);
            var a = CounterRandom.Uniform(new long[] { 70_000 }, 2.0, CPU).data<float>().ToArray();
            var b = CounterRandom.Dropout(torch.ones(50_000), 0.5).data<float>().ToArray();
            return a.Concat(b).ToArray();
        }
        var one = Draw(1);
        Assert.Equal(one, Draw(2));
        torch.manual_seed(12);
        Assert.NotEqual(one.Take(70_000).ToArray(), CounterRandom.Uniform(new long[] { 70_000 }, 2.0, CPU).data<float>().ToArray());
    }

    [Fact]
    public void Uniform_is_flat_on_its_range()
    {
        torch.manual_seed(5);
        var u = CounterRandom.Uniform(new long[] { 200_000 }, 2.0, CPU).data<float>().ToArray();
        Assert.All(u, v => Assert.InRange(v, 0f, 1.9999999f));
        // Ten bins of 20,000 expected draws each (sd about 134): each within 5 sd.
        var bins = new int[10];
        foreach (var v in u) bins[(int)(v * 5)]++;
        Assert.All(bins, c => Assert.InRange(c, 20_000 - 670, 20_000 + 670));
        // Consecutive draws are not correlated (lag-1 correlation near 0; sd about 0.0022).
        double mean = u.Average(v => (double)v), cov = 0, var = 0;
        for (int i = 0; i + 1 < u.Length; i++) { cov += (u[i] - mean) * (u[i + 1] - mean); var += (u[i] - mean) * (u[i] - mean); }
        Assert.InRange(cov / var, -0.011, 0.011);
    }

    [Fact]
    public void Dropout_gradient_is_the_mask()
    {
        torch.manual_seed(2);
        var x = torch.ones(4000, requires_grad: true);
        var y = CounterRandom.Dropout(x, 0.25);
        y.sum().backward();
        Assert.Equal(y.detach().data<float>().ToArray(), x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Vector_draws_equal_the_scalar_definition()
    {
        // Lengths and offsets off the 16-lane blocks; thresholds of p = 0.1 and 0.5.
        foreach (var (seed, first, length, p) in new[] { (17UL, 0L, 1000, 0.1), (0xDEADBEEFUL, 5L, 37, 0.5), (3UL, 1L << 40, 16, 0.1) })
        {
            uint threshold = CounterRandom.KeepThreshold(p);
            var values = Enumerable.Range(0, length).Select(i => 1f + i).ToArray();
            CounterRandom.DropInPlace(values, seed, first, threshold, 2f);
            for (int i = 0; i < length; i++)
                Assert.Equal(CounterRandom.Keeps(seed, first + i, threshold) ? (1f + i) * 2f : 0f, values[i]);
        }
        torch.manual_seed(4);
        ulong s = CounterRandom.NextSeed();
        torch.manual_seed(4);
        var u = CounterRandom.Uniform(new long[] { 1003 }, 3.0, CPU).data<float>().ToArray();
        float step = (float)(3.0 / (1 << 24));
        for (int i = 0; i < u.Length; i++) Assert.Equal(CounterRandom.UniformDraw(s, i, step), u[i]);
    }
}
