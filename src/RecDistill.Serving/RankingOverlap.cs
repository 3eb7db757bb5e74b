namespace RecDistill.Serving;

/// <summary>How much two models agree on their top-K lists (e.g. an int8 export against the fp32 one).</summary>
public static class RankingOverlap
{
    /// <summary>
    /// Mean over the users of |top-k(a) ∩ top-k(b)| / max(|top-k(a)|, |top-k(b)|), seen items excluded;
    /// users with empty lists on both sides count as full agreement.
    /// </summary>
    public static double Mean(Recommender a, Recommender b, IReadOnlyList<string> userIds, int k, int maxDegreeOfParallelism = 1)
    {
        if (userIds.Count == 0) throw new ArgumentException("no users to compare", nameof(userIds));
        var la = a.RecommendBatch(userIds, k, true, maxDegreeOfParallelism);
        var lb = b.RecommendBatch(userIds, k, true, maxDegreeOfParallelism);
        double sum = 0;
        for (int j = 0; j < la.Length; j++)
        {
            int n = Math.Max(la[j].Count, lb[j].Count);
            if (n == 0) { sum += 1; continue; }
            var set = new HashSet<string>(la[j].Select(r => r.ItemId), StringComparer.Ordinal);
            sum += (double)lb[j].Count(r => set.Contains(r.ItemId)) / n;
        }
        return sum / la.Length;
    }

    /// <summary>Up to <paramref name="max"/> of the model's users, evenly spaced over the dense ids (all when fewer).</summary>
    public static string[] SampleUsers(CompactModel model, int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        int n = Math.Min(max, model.NumUsers);
        var ids = new string[n];
        for (int j = 0; j < n; j++) ids[j] = model.UserIds[(int)((long)j * model.NumUsers / n)];
        return ids;
    }
}
