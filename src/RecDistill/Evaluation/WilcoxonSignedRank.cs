namespace RecDistill.Evaluation;

/// <summary>Outcome of a paired comparison of two samples (a - b per pair).</summary>
/// <param name="Pairs">Pairs compared.</param>
/// <param name="NonZero">Pairs whose difference is not zero (the ones the test ranks).</param>
/// <param name="Wins">Pairs where a is higher.</param>
/// <param name="Losses">Pairs where b is higher.</param>
/// <param name="MeanA">Mean of a over all pairs.</param>
/// <param name="MeanB">Mean of b over all pairs.</param>
/// <param name="WPlus">Sum of the ranks of |a - b| over the pairs where a is higher.</param>
/// <param name="Z">Normal score of W+ (tie-corrected variance); NaN when no pair differs.</param>
/// <param name="P">Two-sided p-value: exact for at most <see cref="WilcoxonSignedRank.ExactLimit"/> differing pairs without tied |differences|, else the normal approximation.</param>
/// <param name="Exact">Whether P is the exact one.</param>
public sealed record PairedTest(int Pairs, int NonZero, int Wins, int Losses, double MeanA, double MeanB, double WPlus, double Z, double P, bool Exact);

/// <summary>
/// Wilcoxon's signed-rank test of paired samples: zero differences are dropped, the remaining |d| are
/// ranked (ties share their mean rank), and W+ (the rank sum of the positive differences) is compared
/// with its distribution when a and b are exchangeable: mean n(n+1)/4, variance
/// n(n+1)(2n+1)/24 - Σ(t³ - t)/48 over groups of t tied |d|.
/// </summary>
public static class WilcoxonSignedRank
{
    /// <summary>Up to this many differing pairs (without ties) the p-value is the exact one.</summary>
    public const int ExactLimit = 30;

    /// <summary>Tests paired samples <paramref name="a"/> and <paramref name="b"/> (same length, finite values); the p-value is two-sided.</summary>
    public static PairedTest Test(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired samples differ in length ({a.Count} and {b.Count})");
        if (a.Count == 0) throw new ArgumentException("no pairs to compare");
        var diffs = new List<double>(a.Count);
        int wins = 0, losses = 0;
        double sumA = 0, sumB = 0;
        for (int i = 0; i < a.Count; i++)
        {
            if (!double.IsFinite(a[i]) || !double.IsFinite(b[i])) throw new ArgumentException($"pair {i} is not finite");
            sumA += a[i]; sumB += b[i];
            double d = a[i] - b[i];
            if (d == 0) continue;
            diffs.Add(d);
            if (d > 0) wins++; else losses++;
        }
        double meanA = sumA / a.Count, meanB = sumB / a.Count;
        int n = diffs.Count;
        if (n == 0) return new PairedTest(a.Count, 0, 0, 0, meanA, meanB, 0, double.NaN, 1.0, true);

        var order = Enumerable.Range(0, n).OrderBy(i => Math.Abs(diffs[i])).ToArray();
        double wPlus = 0, tieTerm = 0;
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && Math.Abs(diffs[order[end + 1]]) == Math.Abs(diffs[order[start]])) end++;
            double rank = (start + end) / 2.0 + 1;   // ranks start at 1; a tied group shares its mean rank
            for (int j = start; j <= end; j++) if (diffs[order[j]] > 0) wPlus += rank;
            double t = end - start + 1;
            tieTerm += t * t * t - t;
            start = end + 1;
        }
        double mean = n * (n + 1) / 4.0;
        double variance = n * (n + 1.0) * (2 * n + 1) / 24 - tieTerm / 48;
        double z = variance > 0 ? (wPlus - mean) / Math.Sqrt(variance) : 0;
        if (n <= ExactLimit && tieTerm == 0)
            return new PairedTest(a.Count, n, wins, losses, meanA, meanB, wPlus, z, ExactP(n, (int)wPlus), true);
        return new PairedTest(a.Count, n, wins, losses, meanA, meanB, wPlus, z, Math.Min(1, Erfc(Math.Abs(z) / Math.Sqrt(2))), false);
    }

    /// <summary>Two-sided exact p-value of W+ = w among n untied ranks: 2 min(P(W ≤ w), P(W ≥ w)), at most 1.</summary>
    internal static double ExactP(int n, int w)
    {
        // counts[s] = number of sign assignments of ranks 1..n whose positive ranks sum to s.
        int max = n * (n + 1) / 2;
        var counts = new double[max + 1];
        counts[0] = 1;
        for (int r = 1; r <= n; r++)
            for (int s = max; s >= r; s--) counts[s] += counts[s - r];
        double total = Math.Pow(2, n), below = 0, above = 0;
        for (int s = 0; s <= max; s++)
        {
            if (s <= w) below += counts[s];
            if (s >= w) above += counts[s];
        }
        return Math.Min(1, 2 * Math.Min(below, above) / total);
    }

    /// <summary>
    /// Complementary error function, from a Chebyshev fit of erfc(x) exp(x²) (fractional error under
    /// 1.2e-7 everywhere), ample for p-values.
    /// </summary>
    internal static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1 / (1 + 0.5 * z);
        double poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double r = t * Math.Exp(poly);
        return x >= 0 ? r : 2 - r;
    }
}
