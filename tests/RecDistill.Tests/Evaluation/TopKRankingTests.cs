using RecDistill.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Evaluation;

public class TopKRankingTests
{
    /// <summary>Brute force: excluded items out, higher score first, ties to the lower id, then excluded items by id.</summary>
    private static long[] Expected(float[,] scores, int row, HashSet<int> excluded, int k)
    {
        int m = scores.GetLength(1);
        var kept = Enumerable.Range(0, m).Where(i => !excluded.Contains(i))
            .OrderByDescending(i => scores[row, i]).ThenBy(i => i);
        return kept.Concat(Enumerable.Range(0, m).Where(excluded.Contains)).Take(k).Select(i => (long)i).ToArray();
    }

    /// <summary>
    /// m = 41, k = 12: no selection round (the buffer holds every item); m = 700, k = 5: many; m = 3000 with
    /// k = 40 and 150: rows long enough for the sampled starting threshold (TopK.OfferRow), amid many ties.
    /// </summary>
    [Theory]
    [InlineData(6, 1, 3000, 40, true)]
    [InlineData(6, 1, 3000, 40, false)]
    [InlineData(7, 2, 3000, 150, true)]
    [InlineData(1, 1, 41, 12, true)]
    [InlineData(2, 2, 41, 12, true)]
    [InlineData(2, 2, 41, 12, false)]
    [InlineData(3, 2, 41, 12, true)]
    [InlineData(4, 1, 700, 5, true)]
    [InlineData(5, 2, 700, 5, true)]
    [InlineData(5, 2, 700, 5, false)]
    public void Matches_brute_force_with_ties_exclusions_and_short_rows(int seed, int threads, int m, int k, bool kernel)
    {
        // kernel: the scores from Sgemm where AVX-512 is there; otherwise (and false) libtorch's product.
        using var kernels = KernelSwitch.Use(kernel);
        var rng = new Random(seed);
        int n = 53, d = 3;
        // Small integer vectors give many tied scores.
        var u = new float[n * d]; var v = new float[m * d];
        for (int i = 0; i < u.Length; i++) u[i] = rng.Next(-2, 3);
        for (int i = 0; i < v.Length; i++) v[i] = rng.Next(-2, 3);
        var excluded = new int[n][];
        for (int r = 0; r < n; r++)
        {
            // Row 0 keeps fewer than k items, so its list ends with excluded items.
            int count = r == 0 ? m - k + 3 : rng.Next(0, 15);
            excluded[r] = Enumerable.Range(0, m).OrderBy(_ => rng.Next()).Take(count).ToArray();
        }
        using var threadScope = TestData.Threads(threads);
        // A small batch bound forces several user batches and a remainder.
        using var got = TopKRanking.Compute(tensor(u, n, d), tensor(v, m, d), excluded, k, maxScoresPerBatch: m * 7);
        var ids = got.data<long>().ToArray();
        var scores = new float[n, m];
        for (int r = 0; r < n; r++)
            for (int i = 0; i < m; i++)
                for (int c = 0; c < d; c++) scores[r, i] += u[r * d + c] * v[i * d + c];
        for (int r = 0; r < n; r++)
            Assert.Equal(Expected(scores, r, excluded[r].ToHashSet(), k), ids.AsSpan(r * k, k).ToArray());
    }

    [Fact]
    public void Same_items_as_libtorch_topk_on_random_scores()
    {
        using var _ = torch.no_grad();
        torch.manual_seed(7);
        var u = torch.randn(300, 8); var v = torch.randn(2000, 8);
        var none = new int[300][];
        for (int r = 0; r < 300; r++) none[r] = Array.Empty<int>();
        using var got = TopKRanking.Compute(u, v, none, 200);
        var (_, want) = u.matmul(v.t()).topk(200, dim: 1);
        Assert.Equal(want.data<long>().ToArray(), got.data<long>().ToArray());
    }
}
