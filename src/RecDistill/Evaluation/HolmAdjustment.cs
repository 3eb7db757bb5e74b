namespace RecDistill.Evaluation;

/// <summary>
/// Holm's step-down adjustment of p-values for m tests read together: sort p ascending, the i-th
/// smallest (i from 1) becomes min(1, max over j &lt;= i of (m - j + 1) p_(j)). Rejecting where the adjusted
/// p is below alpha keeps the family-wise error rate at alpha, without assuming the tests independent.
/// </summary>
public static class HolmAdjustment
{
    /// <summary>The adjusted p-values, in the order of <paramref name="p"/>.</summary>
    public static double[] Adjust(IReadOnlyList<double> p)
    {
        int m = p.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => p[i]).ThenBy(i => i).ToArray();
        var adjusted = new double[m];
        double running = 0;
        for (int rank = 0; rank < m; rank++)
        {
            running = Math.Max(running, Math.Min(1.0, (m - rank) * p[order[rank]]));
            adjusted[order[rank]] = running;
        }
        return adjusted;
    }
}
