using RecDistill.Evaluation;
using RecDistill.Models;
using static TorchSharp.torch;

namespace RecDistill.Tests.Evaluation;

public class RankingMetricsTests
{
    [Fact]
    public void HandChecked_values()
    {
        // Ranked: 5, 1, 7, 3; targets {1, 3, 9}: hits at ranks 2 and 4.
        var sums = new Dictionary<string, double>();
        RankingMetrics.Accumulate(new long[] { 5, 1, 7, 3 }, new HashSet<int> { 1, 3, 9 }, new[] { 2, 4 }, sums);
        Assert.Equal(1.0 / 3, sums["recall@2"], 12);
        Assert.Equal(2.0 / 3, sums["recall@4"], 12);
        Assert.Equal(0.5, sums["precision@2"], 12);
        Assert.Equal(1.0, sums["hit@2"]);
        double idcg2 = 1 + 1 / Math.Log2(3);
        Assert.Equal(1 / Math.Log2(3) / idcg2, sums["ndcg@2"], 12);
        double idcg4 = 1 + 1 / Math.Log2(3) + 1 / Math.Log2(4); // min(K, |targets|) = 3 ideal hits
        Assert.Equal((1 / Math.Log2(3) + 1 / Math.Log2(5)) / idcg4, sums["ndcg@4"], 12);
    }

    [Fact]
    public void Perfect_ranking_has_ndcg_one()
    {
        var sums = new Dictionary<string, double>();
        RankingMetrics.Accumulate(new long[] { 4, 2, 8, 1, 0 }, new HashSet<int> { 4, 2 }, new[] { 1, 5 }, sums);
        Assert.Equal(1.0, sums["ndcg@1"], 12);
        Assert.Equal(1.0, sums["ndcg@5"], 12);
        Assert.Equal(0.5, sums["recall@1"], 12);
    }

    /// <summary>The batched evaluator against a plain brute-force computation on random cases.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Evaluator_matches_brute_force(int seed)
    {
        var data = TestData.Clustered(users: 37, items: 60, seed: seed);
        var rng = new Random(seed);
        int d = 5;
        var uv = Enumerable.Range(0, data.NumUsers * d).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var iv = Enumerable.Range(0, data.NumItems * d).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var cutoffs = new[] { 3, 10, 20 };
        // Tiny batches force several user batches, and a remainder batch.
        var evaluator = new FullRankingEvaluator(data, cutoffs) { MaxScoresPerBatch = 60 * 8 };
        foreach (var split in new[] { EvalSplit.Valid, EvalSplit.Test })
        {
            var got = evaluator.Evaluate(tensor(uv, data.NumUsers, d), tensor(iv, data.NumItems, d), split);
            var want = BruteForce(data, uv, iv, d, cutoffs, split);
            Assert.Equal(want.Count, got.Metrics.Count);
            foreach (var (k, v) in want) Assert.True(Math.Abs(v - got[k]) < 1e-9, $"{split} {k}: {got[k]} vs {v}");
        }
    }

    private static Dictionary<string, double> BruteForce(RecDistill.Data.SplitDataset data, float[] uv, float[] iv, int d,
        int[] cutoffs, EvalSplit split)
    {
        var totals = new Dictionary<string, double>();
        int n = 0;
        for (int u = 0; u < data.NumUsers; u++)
        {
            if ((split == EvalSplit.Valid ? data.Valid[u] : data.Test[u]).Length == 0) continue;
            n++;
            foreach (var (key, value) in BruteForceUser(data, uv, iv, d, cutoffs, split, u)) Add(totals, key, value);
        }
        return totals.ToDictionary(kv => kv.Key, kv => kv.Value / n);
    }

    /// <summary>One user's metrics by scoring every item: train items (and for test, validation items) left out.</summary>
    internal static Dictionary<string, double> BruteForceUser(RecDistill.Data.SplitDataset data, float[] uv, float[] iv, int d,
        int[] cutoffs, EvalSplit split, int u)
    {
        var metrics = new Dictionary<string, double>();
        var targets = split == EvalSplit.Valid ? data.Valid[u] : data.Test[u];
        var excluded = new HashSet<int>(data.Train[u]);
        if (split == EvalSplit.Test) excluded.UnionWith(data.Valid[u]);
        var scored = Enumerable.Range(0, data.NumItems).Where(i => !excluded.Contains(i))
            .Select(i => (i, s: Enumerable.Range(0, d).Sum(k => uv[u * d + k] * iv[i * d + k])))
            .OrderByDescending(x => x.s).ThenBy(x => x.i).Select(x => x.i).ToList();
        foreach (var k in cutoffs)
        {
            var top = scored.Take(k).ToList();
            int hits = top.Count(targets.Contains);
            double dcg = top.Select((i, r) => targets.Contains(i) ? 1 / Math.Log2(r + 2) : 0).Sum();
            double idcg = Enumerable.Range(0, Math.Min(k, targets.Length)).Sum(r => 1 / Math.Log2(r + 2));
            metrics[$"recall@{k}"] = (double)hits / targets.Length;
            metrics[$"ndcg@{k}"] = dcg / idcg;
            metrics[$"precision@{k}"] = (double)hits / k;
            metrics[$"hit@{k}"] = hits > 0 ? 1 : 0;
        }
        return metrics;
    }

    private static void Add(Dictionary<string, double> d, string k, double v) => d[k] = d.GetValueOrDefault(k) + v;
}
