using RecDistill.Evaluation;

namespace RecDistill.Tests.Evaluation;

public class WilcoxonSignedRankTests
{
    /// <summary>Every sign assignment of the ranks, counted directly: the exact null distribution of W+.</summary>
    private static double BruteForceP(double[] ranks, double w)
    {
        int n = ranks.Length;
        long below = 0, above = 0, total = 1L << n;
        for (long mask = 0; mask < total; mask++)
        {
            double s = 0;
            for (int i = 0; i < n; i++) if ((mask >> i & 1) != 0) s += ranks[i];
            if (s <= w + 1e-9) below++;
            if (s >= w - 1e-9) above++;
        }
        return Math.Min(1, 2.0 * Math.Min(below, above) / total);
    }

    /// <summary>Mean ranks of |d| computed the slow way: 1 + (number smaller) + (number equal - 1) / 2.</summary>
    private static double[] MidRanks(double[] d) => d.Select(x => 1 + d.Count(y => Math.Abs(y) < Math.Abs(x)) + (d.Count(y => Math.Abs(y) == Math.Abs(x)) - 1) / 2.0).ToArray();

    [Theory]
    [InlineData(1, 6)]
    [InlineData(2, 10)]
    [InlineData(3, 14)]
    public void Exact_p_matches_counting_every_sign_assignment(int seed, int n)
    {
        var rng = new Random(seed);
        var a = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
        var b = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 0.8).ToArray();
        var t = WilcoxonSignedRank.Test(a, b);
        var d = a.Zip(b, (x, y) => x - y).ToArray();
        var ranks = MidRanks(d);
        double w = ranks.Where((_, i) => d[i] > 0).Sum();
        Assert.True(t.Exact);
        Assert.Equal(w, t.WPlus);
        Assert.Equal(BruteForceP(ranks, w), t.P, 12);
        Assert.Equal(d.Count(x => x > 0), t.Wins);
    }

    [Fact]
    public void Normal_score_uses_the_tie_corrected_variance_of_the_sign_flip_distribution()
    {
        // Ties and zeros: zeros are dropped, tied |d| share a rank; under sign flips W+ has mean Σr/2 and variance Σr²/4.
        double[] a = { 3, 5, 5, 2, 8, 1, 4, 4, 7, 6, 9, 3, 2, 2, 5, 6, 8, 1, 7, 3, 4, 6, 2, 9, 5, 5, 3, 8, 1, 6, 4, 7 };
        double[] b = { 1, 5, 3, 4, 6, 1, 2, 6, 4, 6, 5, 1, 3, 1, 2, 3, 6, 2, 4, 3, 2, 4, 4, 5, 3, 5, 1, 5, 2, 2, 6, 3 };
        var t = WilcoxonSignedRank.Test(a, b);
        var d = a.Zip(b, (x, y) => x - y).Where(x => x != 0).ToArray();
        var r = MidRanks(d);
        double w = r.Where((_, i) => d[i] > 0).Sum();
        double z = (w - r.Sum() / 2) / Math.Sqrt(r.Sum(x => x * x) / 4);
        Assert.False(t.Exact);
        Assert.Equal(d.Length, t.NonZero);
        Assert.Equal(a.Length, t.Pairs);
        Assert.Equal(w, t.WPlus);
        Assert.Equal(z, t.Z, 12);
        Assert.Equal(WilcoxonSignedRank.Erfc(Math.Abs(z) / Math.Sqrt(2)), t.P, 15);
        Assert.Equal(a.Average(), t.MeanA, 12);
    }

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.5, 0.4795001221869535)]
    [InlineData(1.0, 0.15729920705028513)]
    [InlineData(2.0, 0.004677734981047266)]
    [InlineData(3.0, 2.209049699858544e-05)]
    [InlineData(-1.0, 1.8427007929497148)]
    public void Erfc_matches_reference_values(double x, double expected) =>
        Assert.Equal(expected, WilcoxonSignedRank.Erfc(x), expected * 2e-7 + 1e-15);

    [Fact]
    public void Identical_samples_give_p_one_and_bad_input_is_refused()
    {
        var t = WilcoxonSignedRank.Test(new[] { 0.1, 0.2 }, new[] { 0.1, 0.2 });
        Assert.Equal(0, t.NonZero);
        Assert.Equal(1.0, t.P);
        Assert.Throws<ArgumentException>(() => WilcoxonSignedRank.Test(new[] { 1.0 }, new[] { 1.0, 2.0 }));
        Assert.Throws<ArgumentException>(() => WilcoxonSignedRank.Test(new[] { double.NaN }, new[] { 1.0 }));
    }
}
