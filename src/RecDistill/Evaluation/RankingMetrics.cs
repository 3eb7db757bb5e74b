namespace RecDistill.Evaluation;

/// <summary>Top-K metrics of one ranked list against a user's target items (binary relevance).</summary>
public static class RankingMetrics
{
    /// <summary>Cutoffs K evaluated when none are given: 10, 20 and 50.</summary>
    public static readonly int[] DefaultCutoffs = { 10, 20, 50 };
    /// <summary>The metric names, as they appear before "@K" in a key.</summary>
    public static readonly string[] MetricNames = { "recall", "ndcg", "precision", "hit" };

    /// <summary>
    /// Adds this user's Recall, NDCG, Precision and HitRate at each cutoff into <paramref name="sums"/>
    /// (keys like "ndcg@20"). <paramref name="ranked"/> holds item ids best first (at least max cutoff long,
    /// or shorter when fewer items exist).
    /// </summary>
    public static void Accumulate(ReadOnlySpan<long> ranked, IReadOnlySet<int> targets, IReadOnlyList<int> cutoffs,
        Dictionary<string, double> sums)
    {
        if (targets.Count == 0) throw new ArgumentException("a user without targets is not evaluated", nameof(targets));
        foreach (var k in cutoffs)
        {
            int n = Math.Min(k, ranked.Length);
            int hits = 0;
            double dcg = 0;
            for (int r = 0; r < n; r++)
            {
                if (targets.Contains((int)ranked[r]))
                {
                    hits++;
                    dcg += 1.0 / Math.Log2(r + 2);
                }
            }
            double idcg = 0;
            for (int r = 0; r < Math.Min(k, targets.Count); r++) idcg += 1.0 / Math.Log2(r + 2);
            Add(sums, $"recall@{k}", (double)hits / targets.Count);
            Add(sums, $"ndcg@{k}", dcg / idcg);
            Add(sums, $"precision@{k}", (double)hits / k);
            Add(sums, $"hit@{k}", hits > 0 ? 1 : 0);
        }
    }

    private static void Add(Dictionary<string, double> d, string key, double v) =>
        d[key] = d.TryGetValue(key, out var s) ? s + v : v;

    /// <summary>Metric keys in a stable order: recall@K, ndcg@K, precision@K, hit@K for each K.</summary>
    public static IEnumerable<string> Keys(IReadOnlyList<int> cutoffs) =>
        MetricNames.SelectMany(m => cutoffs.Select(k => $"{m}@{k}"));
}
