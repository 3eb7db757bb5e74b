using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Serving;
using Xunit.Abstractions;
using static RecDistill.Tests.Serving.ServingFixtures;
using static TorchSharp.torch;

namespace RecDistill.Tests.Serving;

public class RecommenderTests(ITestOutputHelper output)
{
    private static IRecommender Build(string backbone, SplitDataset data, int dim) => backbone == "bpr"
        ? new BprMf(data.NumUsers, data.NumItems, dim, initStd: 1.0)
        : new LightGcn(data.NumUsers, data.NumItems, dim, 2, data.Train, initStd: 1.0);

    [Theory]
    [InlineData("bpr")]
    [InlineData("lightgcn")]
    public void Fp32_top_k_is_the_training_models_ranking(string backbone)
    {
        // 5,003 items: more than one scoring block, and a block tail that is not a multiple of the SIMD width.
        manual_seed(11);
        var data = RandomData(users: 120, items: 5003, perUser: 80, seed: 3);
        const int dim = 13, k = 20;
        using var model = Build(backbone, data, dim);
        var (m, uv, iv) = Export(model, data, VectorPrecision.Fp32);
        var rec = new Recommender(m);
        for (int u = 0; u < data.NumUsers; u++)
        {
            foreach (bool exclude in new[] { true, false })
            {
                var want = BruteForce(uv, iv, dim, data, u, k, exclude);
                var got = rec.Recommend(data.UserIds[u], k, exclude);
                // The same items in the same order; scores equal up to float32 rounding.
                Assert.Equal(want.Select(w => data.ItemIds[w.Item]), got.Select(g => g.ItemId));
                for (int r = 0; r < k; r++) Assert.Equal(want[r].Score, got[r].Score, 1e-4 * Math.Max(1, Math.Abs(want[r].Score)));
                if (exclude) Assert.DoesNotContain(got, g => data.Train[u].Contains((int.Parse(g.ItemId) - 3) / 5));
            }
        }
    }

    [Fact]
    public void Fp32_top_k_matches_on_the_clustered_test_data()
    {
        manual_seed(5);
        var data = TestData.Clustered();
        using var model = new LightGcn(data.NumUsers, data.NumItems, 6, 3, data.Train);
        var (m, uv, iv) = Export(model, data, VectorPrecision.Fp32);
        var rec = new Recommender(m);
        for (int u = 0; u < data.NumUsers; u++)
        {
            var want = BruteForce(uv, iv, 6, data, u, 10).Select(w => data.ItemIds[w.Item]);
            Assert.Equal(want, rec.Recommend(data.UserIds[u], 10).Select(g => g.ItemId));
        }
    }

    // Measured on this data: fp16 0.9993, int8 0.9877 (CiteULike d=20 student, top-20: int8 0.992).
    [Theory]
    [InlineData(VectorPrecision.Fp16, 0.99)]
    [InlineData(VectorPrecision.Int8, 0.95)]
    public void Quantized_top_10_mostly_agrees_with_fp32(VectorPrecision precision, double bound)
    {
        manual_seed(21);
        var data = RandomData(users: 300, items: 3000, perUser: 30, seed: 8);
        using var model = new BprMf(data.NumUsers, data.NumItems, 32, initStd: 1.0);
        var exact = new Recommender(Export(model, data, VectorPrecision.Fp32).Model);
        var quantized = new Recommender(Export(model, data, precision).Model);
        var users = data.UserIds;
        double overlap = Overlap(exact.RecommendBatch(users, 10), quantized.RecommendBatch(users, 10));
        output.WriteLine($"{precision}: mean top-10 overlap with fp32 over {users.Length} users = {overlap:F4}");
        Assert.InRange(overlap, bound, 1.0);
        Assert.Equal(overlap, RankingOverlap.Mean(exact, quantized, users, 10), 12);
    }

    [Theory]
    [InlineData(VectorPrecision.Fp32)]
    [InlineData(VectorPrecision.Fp16)]
    [InlineData(VectorPrecision.Int8)]
    public void Parallel_queries_give_the_sequential_answers(VectorPrecision precision)
    {
        manual_seed(4);
        var data = RandomData(users: 200, items: 2100, perUser: 40, seed: 9);
        using var model = new BprMf(data.NumUsers, data.NumItems, 24, initStd: 1.0);
        var rec = new Recommender(Export(model, data, precision).Model);
        var users = data.UserIds;
        var sequential = users.Select(u => rec.Recommend(u, 15)).ToArray();
        // Every user asked 4 times, in a shuffled order, from up to 8 threads at once.
        var order = Enumerable.Range(0, 4 * users.Length).Select(j => j % users.Length).OrderBy(_ => Random.Shared.Next()).ToArray();
        var answers = new IReadOnlyList<Recommendation>[order.Length];
        Parallel.For(0, order.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 },
            j => answers[j] = rec.Recommend(users[order[j]], 15));
        for (int j = 0; j < order.Length; j++) Assert.Equal(sequential[order[j]], answers[j]);
        // The batch form, single- and multi-threaded, gives the same lists as single queries.
        Assert.Equal(sequential, rec.RecommendBatch(users, 15));
        Assert.Equal(sequential, rec.RecommendBatch(users, 15, maxDegreeOfParallelism: 4));
        var many = Enumerable.Range(0, 6).SelectMany(_ => users).ToArray();
        var parallelBatches = new IReadOnlyList<Recommendation>[3][];
        Parallel.For(0, 3, b => parallelBatches[b] = rec.RecommendBatch(many, 15, maxDegreeOfParallelism: 2));
        foreach (var batch in parallelBatches)
            for (int j = 0; j < many.Length; j++) Assert.Equal(sequential[j % users.Length], batch[j]);
    }

    [Fact]
    public void Seen_items_are_left_out_and_short_lists_are_returned()
    {
        var data = new SplitDataset
        {
            Name = "tiny",
            UserIds = new[] { "7", "9" },
            ItemIds = new[] { "100", "101", "102", "103", "104", "105" },
            Train = new[] { new[] { 0, 1, 2 }, new[] { 5 } },
            Valid = new[] { Array.Empty<int>(), Array.Empty<int>() },
            Test = new[] { Array.Empty<int>(), Array.Empty<int>() },
        };
        var users = new float[] { 1, 0, 0, 1 };
        var items = new float[] { 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 9 };
        var rec = new Recommender(CompactModel.Create(ModelBackbone.Bpr, 0, 2, users, items, data.UserIds, data.ItemIds, data.Train, VectorPrecision.Fp32));
        Assert.Equal(new[] { new Recommendation("103", 3), new Recommendation("104", 2), new Recommendation("105", 1) }, rec.Recommend("7", 10));
        Assert.Equal(new[] { "100", "101", "102", "103", "104", "105" }, rec.Recommend("7", 10, excludeSeen: false).Select(r => r.ItemId));
        Assert.Equal(new[] { "100", "101" }, rec.Recommend("7", 2, excludeSeen: false).Select(r => r.ItemId));
        Assert.Equal(new[] { new Recommendation("100", 0), new Recommendation("101", 0) }, rec.Recommend("9", 2)); // ties: lower index first
        Assert.Equal("105", rec.Recommend("9", 1, excludeSeen: false)[0].ItemId);
    }

    [Fact]
    public void Unknown_users_are_refused_and_popularity_is_the_fallback()
    {
        var data = TestData.Clustered();
        using var model = new BprMf(data.NumUsers, data.NumItems, 4);
        var rec = new Recommender(Export(model, data, VectorPrecision.Fp32).Model);
        Assert.True(rec.Model.TryGetUser("10", out int ten));
        Assert.Equal(1, ten);
        Assert.False(rec.Model.TryGetUser("11", out _));
        Assert.False(rec.Model.TryGetUser("010", out _)); // ids are text: "010" is not "10"
        var e = Assert.Throws<UnknownUserException>(() => rec.Recommend("11", 5));
        Assert.Equal("11", e.UserId);
        Assert.Contains("user '11' is not in the model", e.Message);
        // A batch is checked whole before any work.
        Assert.Throws<UnknownUserException>(() => rec.RecommendBatch(new[] { "0", "10", "-3" }, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => rec.Recommend("10", 0));
        // A null id is the caller's mistake, named by its parameter (not the lookup's "key").
        Assert.Equal("userId", Assert.Throws<ArgumentNullException>(() => rec.Recommend(null!, 5)).ParamName);
        Assert.Equal("userIds", Assert.Throws<ArgumentException>(() => rec.RecommendBatch(new[] { "0", null! }, 5)).ParamName);
        Assert.Equal("itemId", Assert.Throws<ArgumentNullException>(() => rec.Similar(null!, 5)).ParamName);
        Assert.Equal("itemIds", Assert.Throws<ArgumentException>(() => rec.RecommendFromItems(new[] { data.ItemIds[0], null! }, 5)).ParamName);

        var counts = new int[data.NumItems];
        foreach (var t in data.Train) foreach (var i in t) counts[i]++;
        var want = Enumerable.Range(0, data.NumItems).OrderByDescending(i => counts[i]).ThenBy(i => i).Take(8)
            .Select(i => new Recommendation(data.ItemIds[i], counts[i]));
        Assert.Equal(want, rec.Popular(8));
        Assert.Equal(data.NumItems, rec.Popular(1000).Count);
    }
}
