namespace RecDistill.Serving.Http.Tests;

/// <summary>The adapter on its own: ids, fold-in, and the approximate index against exact search.</summary>
public sealed class ModelAdapterTests
{
    private static ServingOptions Options(IndexKind index = IndexKind.Exact, int candidates = 128) =>
        new() { ModelPath = "(memory)", Index = index, Hnsw = new HnswOptions { Candidates = candidates } };

    [Fact]
    public void Ids_are_matched_by_their_exact_spelling()
    {
        using var adapter = ModelAdapter.Create(new TinyModel().Model, Options());
        Assert.True(adapter.ContainsUser("10"));
        Assert.True(adapter.ContainsItem("103"));
        foreach (var id in new[] { "010", "+10", " 10", "10 ", "1e1", "10.0", "", "ten", "99999999999999999999" })
            Assert.False(adapter.ContainsUser(id), id);
        var e = Assert.Throws<UnknownIdException>(() => adapter.Similar("104", 3));
        Assert.Equal(("item", "104"), (e.Kind, e.Id));
    }

    [Fact]
    public void Fold_in_of_a_known_users_items_points_where_the_items_point()
    {
        // One item: u solves (|v|² + λ) u = v, so u is v scaled by a positive number and ranks like Similar(v) plus v itself left out.
        var tiny = new TinyModel(items: 60, dim: 6);
        using var adapter = ModelAdapter.Create(tiny.Model, Options());
        var one = adapter.RecommendFromItems(new[] { "109" }, 10).Select(r => r.Item);
        Assert.Equal(adapter.Similar("109", 10).Select(r => r.Item), one);
        // Duplicates count once; order does not matter.
        Assert.Equal(adapter.RecommendFromItems(new[] { "100", "106", "112" }, 8), adapter.RecommendFromItems(new[] { "112", "100", "106", "100" }, 8));
    }

    [Fact]
    public void K_beyond_the_catalogue_returns_every_remaining_item()
    {
        var tiny = new TinyModel(items: 12);
        using var adapter = ModelAdapter.Create(tiny.Model, Options());
        Assert.Equal(12 - tiny.Train[0].Length, adapter.Recommend("10", 100).Count);
        Assert.Equal(11, adapter.Similar("100", 100).Count);
        Assert.Equal(10, adapter.RecommendFromItems(new[] { "100", "103" }, 100).Count);
    }

    [Fact]
    public void The_hnsw_index_finds_nearly_what_exact_search_finds()
    {
        var tiny = new TinyModel(users: 60, items: 3000, dim: 8, seed: 3);
        using var exact = ModelAdapter.Create(tiny.Model, Options());
        using var approx = ModelAdapter.Create(tiny.Model, Options(IndexKind.Hnsw, candidates: 64));
        Assert.Equal("hnsw", approx.Info.Index);
        double hits = 0;
        int lists = 0;
        foreach (var user in tiny.UserIds.Select(u => u.ToString()))
        {
            var e = exact.Recommend(user, 10).Select(r => r.Item).ToHashSet();
            var a = approx.Recommend(user, 10);
            Assert.Equal(10, a.Count);
            Assert.Equal(a.Select(r => r.Score).OrderDescending(), a.Select(r => r.Score));
            int u = Array.IndexOf(tiny.UserIds, user);
            Assert.DoesNotContain(a, r => tiny.Train[u].Contains(tiny.ItemIndex(r.Item)));
            hits += a.Count(r => e.Contains(r.Item));
            lists++;
        }
        Assert.True(hits / (10.0 * lists) >= 0.9, $"recall@10 {hits / (10.0 * lists):F3}");
        var similar = approx.Similar("100", 10);
        Assert.DoesNotContain(similar, r => r.Item == "100");
        Assert.True(similar.Select(r => r.Item).Intersect(exact.Similar("100", 10).Select(r => r.Item)).Count() >= 8);
        var folded = approx.RecommendFromItems(new[] { "100", "103" }, 10);
        Assert.DoesNotContain(folded, r => r.Item is "100" or "103");
    }

    [Fact]
    public void The_hnsw_index_falls_back_to_exact_search_when_too_few_candidates_remain()
    {
        var tiny = new TinyModel(users: 4, items: 500, dim: 4, seed: 5);
        using var approx = ModelAdapter.Create(tiny.Model, Options(IndexKind.Hnsw, candidates: 2));
        var u = tiny.UserVector(0);
        int[] leaveOut = [3, 7];
        // Five candidates of which two are left out cannot give ten items: the exact ranking answers.
        var a = approx.FromCandidates(u, 10, leaveOut, [1, 3, 5, 7, 9]);
        Assert.Equal(tiny.Ranking(u, 10, leaveOut), a.Select(r => r.Item));
        // Enough usable candidates: only they are ranked (by their exact scores).
        var b = approx.FromCandidates(u, 2, leaveOut, [1, 3, 5, 7, 9]);
        Assert.Equal(new[] { 1, 5, 9 }.OrderByDescending(i => tiny.Score(u, i)).ThenBy(i => i).Take(2).Select(i => tiny.ItemIds[i]), b.Select(r => r.Item));
        // Through the service's path: ten items, none of them left out.
        var top = approx.Recommend("10", 3).Select(r => r.Item).ToArray();
        var c = approx.Recommend("10", 10, top);
        Assert.Equal(10, c.Count);
        Assert.DoesNotContain(c, r => top.Contains(r.Item));
    }

    [Fact]
    public async Task The_hnsw_index_answers_many_threads_at_once_as_it_answers_one()
    {
        var tiny = new TinyModel(users: 40, items: 2000, dim: 8, seed: 7);
        using var approx = ModelAdapter.Create(tiny.Model, Options(IndexKind.Hnsw));
        var users = tiny.UserIds.Select(u => u.ToString()).ToArray();
        var sequential = users.Select(u => string.Join(",", approx.Recommend(u, 10).Select(r => r.Item))).ToArray();
        var tasks = Enumerable.Range(0, 16).Select(t => Task.Run(() =>
        {
            for (int rep = 0; rep < 5; rep++)
                for (int j = 0; j < users.Length; j++)
                    Assert.Equal(sequential[j], string.Join(",", approx.Recommend(users[j], 10).Select(r => r.Item)));
        }));
        await Task.WhenAll(tasks);
    }
}
