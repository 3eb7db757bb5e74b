using RecDistill.Data;

namespace RecDistill.Tests.Data;

public class CleaningTests
{
    private static RawInteraction R(long u, long i, float? rating = null, long? t = null, long line = 0) => new(u.ToString(), i.ToString(), rating, t, line);

    [Fact]
    public void Positive_threshold_keeps_unrated_rows()
    {
        var rows = new[] { R(1, 1, 5), R(1, 2, 3), R(1, 3), R(1, 4, 4) };
        var kept = DataCleaning.KeepPositive(rows, 4, out int removed);
        Assert.Equal(new[] { "1", "3", "4" }, kept.Select(r => r.Item));
        Assert.Equal(1, removed);
        Assert.Equal(4, DataCleaning.KeepPositive(rows, null, out removed).Count);
        Assert.Equal(0, removed);
    }

    [Fact]
    public void Dedup_keeps_first_occurrence()
    {
        var rows = new[] { R(1, 1, line: 1), R(2, 1, line: 2), R(1, 1, line: 3), R(1, 2, line: 4), R(2, 1, line: 5) };
        var kept = DataCleaning.RemoveDuplicates(rows, out int removed);
        Assert.Equal(new long[] { 1, 2, 4 }, kept.Select(r => r.Line));
        Assert.Equal(2, removed);
    }

    [Fact]
    public void KCore_repeats_until_stable()
    {
        // Item 3 has one user; dropping it leaves user C with one item, and dropping C is a second round.
        var rows = new[] { R(10, 1), R(10, 2), R(20, 1), R(20, 2), R(30, 1), R(30, 3) };
        var core = DataCleaning.KCore(rows, minUser: 2, minItem: 2);
        Assert.Equal(new (long, long)[] { (10, 1), (10, 2), (20, 1), (20, 2) }, core.Rows.Select(r => (long.Parse(r.User), long.Parse(r.Item))));
        Assert.Equal(2, core.Rounds);
        Assert.Equal(1, core.RemovedUsers);
        Assert.Equal(1, core.RemovedItems);
        Assert.Equal(2, core.RemovedPairs);
    }

    [Fact]
    public void KCore_cascade_can_remove_everything_and_zero_bars_keep_all()
    {
        var rows = new[] { R(1, 1), R(1, 2), R(2, 2), R(2, 3) };
        Assert.Empty(DataCleaning.KCore(rows, 2, 2).Rows);
        var all = DataCleaning.KCore(rows, 0, 0);
        Assert.Equal(4, all.Rows.Count);
        Assert.Equal(0, all.Rounds);
    }
}

public class SplitTests
{
    private static RawInteraction R(long u, long i, long? t = null) => new(u.ToString(), i.ToString(), null, t, 0);

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 1, 1)]
    [InlineData(3, 2, 2)]
    [InlineData(4, 3, 3)]
    [InlineData(5, 4, 4)]
    [InlineData(6, 4, 5)]
    [InlineData(7, 5, 6)]
    [InlineData(8, 6, 7)]
    [InlineData(9, 7, 8)]
    [InlineData(10, 8, 9)]
    [InlineData(100, 80, 90)]
    public void Order_cut_points(int n, int train, int validEnd)
    {
        Assert.Equal((train, validEnd), DataSplitter.CutPoints(n));
    }

    [Fact]
    public void Cut_points_are_exact_for_awkward_ratios()
    {
        // 0.29 * 100 is 28.999999999999996 in doubles.
        Assert.Equal((29, 30), DataSplitter.CutPoints(100, 0.29, 0.01));
        Assert.Equal((1, 1), DataSplitter.CutPoints(3, 0.1, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSplitter.CutPoints(5, 0.9, 0.2));
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSplitter.CutPoints(5, 0, 0.1));
    }

    [Fact]
    public void Order_split_keeps_user_order_and_reindexes_ascending()
    {
        var rows = new List<RawInteraction>();
        foreach (long i in new long[] { 50, 30, 90, 10, 70 }) rows.Add(R(700, i));
        rows.Add(R(5, 30));
        rows.Add(R(5, 10));
        var d = DataSplitter.Split("t", rows, SplitMethod.Order);
        Assert.Equal(new[] { "5", "700" }, d.UserIds);
        Assert.Equal(new[] { "10", "30", "50", "70", "90" }, d.ItemIds);
        long[] Raw(int[] a) => a.Select(i => long.Parse(d.ItemIds[i])).ToArray();
        Assert.Equal(new long[] { 50, 30, 90, 10 }, Raw(d.Train[1]));
        Assert.Empty(d.Valid[1]);
        Assert.Equal(new long[] { 70 }, Raw(d.Test[1]));
        Assert.Equal(new long[] { 30 }, Raw(d.Train[0]));
        Assert.Equal(new long[] { 10 }, Raw(d.Test[0]));
        Assert.Contains(d.Log, l => l.StartsWith("split order"));
    }

    private static List<RawInteraction> Grid(int users, int items)
    {
        var rows = new List<RawInteraction>();
        for (int u = 0; u < users; u++)
            for (int i = 0; i < items; i++)
                rows.Add(R(u, (u * 7 + i) % (items + 3), u * 1000L + i));
        return rows;
    }

    private static string Signature(SplitDataset d) =>
        string.Join("|", Enumerable.Range(0, d.NumUsers).Select(u =>
            string.Join(",", d.Train[u]) + "/" + string.Join(",", d.Valid[u]) + "/" + string.Join(",", d.Test[u])));

    [Fact]
    public void Random_split_is_deterministic_per_seed_and_keeps_each_users_items()
    {
        var rows = Grid(40, 20);
        var a = DataSplitter.Split("t", rows, SplitMethod.Random, seed: 3);
        var b = DataSplitter.Split("t", rows, SplitMethod.Random, seed: 3);
        var c = DataSplitter.Split("t", rows, SplitMethod.Random, seed: 4);
        Assert.Equal(Signature(a), Signature(b));
        Assert.NotEqual(Signature(a), Signature(c));
        var order = DataSplitter.Split("t", rows, SplitMethod.Order);
        for (int u = 0; u < a.NumUsers; u++)
        {
            Assert.Equal((16, 2, 2), (a.Train[u].Length, a.Valid[u].Length, a.Test[u].Length));
            var all = a.Train[u].Concat(a.Valid[u]).Concat(a.Test[u]).Order();
            Assert.Equal(order.Train[u].Concat(order.Valid[u]).Concat(order.Test[u]).Order(), all);
        }
        Assert.NotEqual(Signature(order), Signature(a));
    }

    [Fact]
    public void Time_split_sorts_by_timestamp_stably()
    {
        var rows = new[] { R(1, 1, 50), R(1, 2, 10), R(1, 3, 30), R(1, 4, 10), R(1, 5, 40),
                           R(1, 6, 20), R(1, 7, 60), R(1, 8, 70), R(1, 9, 80), R(1, 10, 5) };
        var d = DataSplitter.Split("t", rows, SplitMethod.Time);
        long[] Raw(int[] a) => a.Select(i => long.Parse(d.ItemIds[i])).ToArray();
        Assert.Equal(new long[] { 10, 2, 4, 6, 3, 5, 1, 7 }, Raw(d.Train[0]));
        Assert.Equal(new long[] { 8 }, Raw(d.Valid[0]));
        Assert.Equal(new long[] { 9 }, Raw(d.Test[0]));
    }

    [Fact]
    public void Time_split_without_timestamps_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => DataSplitter.Split("t", new[] { R(1, 1, 5), R(1, 2) }, SplitMethod.Time));
        Assert.Contains("timestamp", e.Message);
    }

    [Fact]
    public void Pre_split_reindexes_union_and_drops_users_without_train()
    {
        var train = new[] { R(20, 300), R(10, 100), R(10, 200) };
        var valid = new[] { R(10, 400), R(20, 100) };
        var test = new[] { R(30, 500), R(20, 200) };
        var d = DataSplitter.FromPreSplit("p", train, valid, test);
        Assert.Equal(new[] { "10", "20" }, d.UserIds);
        Assert.Equal(new[] { "100", "200", "300", "400" }, d.ItemIds);
        Assert.Equal(new[] { 0, 1 }, d.Train[0]);
        Assert.Equal(new[] { 3 }, d.Valid[0]);
        Assert.Equal(new[] { 2 }, d.Train[1]);
        Assert.Equal(new[] { 0 }, d.Valid[1]);
        Assert.Equal(new[] { 1 }, d.Test[1]);
        Assert.Empty(d.Test[0]);
        Assert.Contains(d.Log, l => l.Contains("removed 1 users with no train interaction"));
        var s = DatasetStatistics.Compute(d);
        Assert.Equal(1, s.ItemsWithoutTrain);
        Assert.Equal(6, s.Pairs);
    }
}
