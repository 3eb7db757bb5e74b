using RecDistill.Runs;
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Serving;

namespace RecDistill.Tests.Serving;

/// <summary>Random datasets, exports and a brute-force reference ranking for the serving tests.</summary>
internal static class ServingFixtures
{
    /// <summary>Random train lists with non-contiguous raw ids (users 1000 + 7u, items 5i + 3).</summary>
    public static SplitDataset RandomData(int users, int items, int perUser, int seed)
    {
        var rng = new Random(seed);
        var train = new int[users][];
        for (int u = 0; u < users; u++)
        {
            int n = 1 + rng.Next(perUser);
            train[u] = Enumerable.Range(0, n).Select(_ => rng.Next(items)).Distinct().ToArray();
        }
        return new SplitDataset
        {
            Name = "random",
            UserIds = Enumerable.Range(0, users).Select(u => (1000 + 7 * u).ToString()).ToArray(),
            ItemIds = Enumerable.Range(0, items).Select(i => (5 * i + 3).ToString()).ToArray(),
            Train = train,
            Valid = Enumerable.Range(0, users).Select(_ => Array.Empty<int>()).ToArray(),
            Test = Enumerable.Range(0, users).Select(_ => Array.Empty<int>()).ToArray(),
        };
    }

    public static (CompactModel Model, float[] Users, float[] Items) Export(IRecommender model, SplitDataset data, VectorPrecision p)
    {
        var (u, i) = ModelExport.FinalVectors(model);
        return (ModelExport.ToCompact(model, u, i, data, p), u, i);
    }

    /// <summary>
    /// The training-time ranking (FullRankingEvaluator: score = dot of final vectors, train items out),
    /// by brute force in double precision over every item: (dense item, score), best first, ties by lower id.
    /// </summary>
    public static (int Item, double Score)[] BruteForce(float[] users, float[] items, int dim, SplitDataset data, int u, int k, bool excludeSeen = true)
    {
        var seen = excludeSeen ? new HashSet<int>(data.Train[u]) : new HashSet<int>();
        return Enumerable.Range(0, data.NumItems).Where(i => !seen.Contains(i))
            .Select(i => (Item: i, Score: Dot(users, u, items, i, dim)))
            .OrderByDescending(x => x.Score).ThenBy(x => x.Item)
            .Take(k).ToArray();
    }

    public static double Dot(float[] users, int u, float[] items, int i, int dim)
    {
        double s = 0;
        for (int c = 0; c < dim; c++) s += (double)users[u * dim + c] * items[i * dim + c];
        return s;
    }

    /// <summary>Mean top-k overlap between two rankings of the same users.</summary>
    public static double Overlap(IReadOnlyList<IReadOnlyList<Recommendation>> a, IReadOnlyList<IReadOnlyList<Recommendation>> b)
    {
        double sum = 0;
        for (int j = 0; j < a.Count; j++)
        {
            var set = a[j].Select(r => r.ItemId).ToHashSet();
            sum += (double)b[j].Count(r => set.Contains(r.ItemId)) / Math.Max(1, Math.Max(a[j].Count, b[j].Count));
        }
        return sum / a.Count;
    }
}
