using RecDistill.Data;

namespace RecDistill.Tests.Data;

public class LoaderTests
{
    [Fact]
    public void Csv_pipeline_thresholds_dedups_kcores_and_logs()
    {
        using var dir = new TempDir();
        var lines = new List<string> { "user;item;rating;time" };
        for (int i = 0; i < 6; i++) lines.Add($"1;{100 + i};5;{1000 - i}");
        lines.Add("1;100;5;1");          // duplicate, dropped
        lines.Add("2;100;1;5");          // below threshold
        for (int i = 0; i < 3; i++) lines.Add($"3;{100 + i};4;{i}"); // too few for the 5-core
        string p = dir.Write("r.csv", string.Join("\n", lines) + "\n");
        var d = DatasetLoader.Load(new DataOptions { Format = DataFormat.Csv, Path = p, PositiveThreshold = 4, Split = SplitMethod.Time });
        Assert.Equal(new[] { "1" }, d.UserIds);
        Assert.Equal(6, d.NumItems);
        // Time order reverses the file order here: item 105 is the oldest.
        Assert.Equal(new[] { "105", "104", "103", "102" }, d.Train[0].Select(i => d.ItemIds[i]));
        Assert.Equal(new[] { "101" }, d.Valid[0].Select(i => d.ItemIds[i]));
        Assert.Equal(new[] { "100" }, d.Test[0].Select(i => d.ItemIds[i]));
        Assert.Contains(d.Log, l => l.Contains("removed 1 interactions with a lower rating"));
        Assert.Contains(d.Log, l => l.Contains("removed 1 duplicate"));
        Assert.Contains(d.Log, l => l.Contains("k-core (users >= 5, items >= 0): removed 1 users"));
        Assert.Contains(d.Log, l => l.StartsWith("final: 1 users, 6 items, 6 interactions"));
        Assert.Contains(d.Log, l => l.Contains("skipped 1 header line in"));
        Assert.Equal("r.csv", d.Name.Split('/')[^1]);
    }

    [Fact]
    public void Time_split_on_a_format_without_timestamps_is_a_data_error()
    {
        using var dir = new TempDir();
        string p = dir.Write("train.txt", "0 1 2 3 4 5\n");
        Expect.Bad(() => DatasetLoader.Load(new DataOptions { Format = DataFormat.Lightgcn, Path = p, Split = SplitMethod.Time }), 1, "timestamp");
    }

    [Fact]
    public void Nothing_left_after_cleaning_is_a_data_error()
    {
        using var dir = new TempDir();
        string p = dir.Write("users.dat", "2 1 2\n1 3\n");
        Expect.Bad(() => DatasetLoader.Load(new DataOptions { Format = DataFormat.Citeulike, Path = p }), 0, "no interactions left");
        var d = DatasetLoader.Load(new DataOptions { Format = DataFormat.Citeulike, Path = p, MinUserInteractions = 0 });
        Assert.Equal(2, d.NumUsers);
    }

    [Fact]
    public void Bad_options_fail_before_reading()
    {
        Assert.Throws<ArgumentException>(() => DatasetLoader.Load(new DataOptions { Format = DataFormat.Csv }));
        // The options' own property is named, not the splitter's argument.
        Assert.Equal(nameof(DataOptions.TrainRatio), Assert.Throws<ArgumentOutOfRangeException>(() =>
            DatasetLoader.Load(new DataOptions { Format = DataFormat.Synthetic, TrainRatio = 1.2 })).ParamName);
        Assert.Equal(nameof(DataOptions.ValidRatio), Assert.Throws<ArgumentOutOfRangeException>(() =>
            DatasetLoader.Load(new DataOptions { Format = DataFormat.Synthetic, TrainRatio = 0.8, ValidRatio = 0.3 })).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetLoader.Load(new DataOptions { Format = DataFormat.Synthetic, MinUserInteractions = -1 }));
        Assert.Equal(5, new DataOptions { Format = DataFormat.Movielens }.EffectiveMinUserInteractions);
        Assert.Equal(0, new DataOptions { Format = DataFormat.Split }.EffectiveMinUserInteractions);
    }

    [Fact]
    public void Pre_split_directory_loads_with_union_ids_and_cross_part_duplicates_removed()
    {
        using var dir = new TempDir();
        dir.Write("train.txt", "5 50 1\n5 60 1\n7 60 1\n");
        dir.Write("valid.txt", "5 70 1\n");
        dir.Write("test.txt", "5 50 1\n7 80 1\n9 90 1\n");
        var d = DatasetLoader.Load(new DataOptions { Format = DataFormat.Split, Path = dir.Path });
        Assert.Equal(new[] { "5", "7" }, d.UserIds);
        Assert.Equal(new[] { "50", "60", "70", "80" }, d.ItemIds);
        Assert.Equal((3L, 1L, 1L), (d.TrainCount, d.ValidCount, d.TestCount));
        Assert.Empty(d.Test[0]);
        Assert.Contains(d.Log, l => l.Contains("removed 1 test pairs already in an earlier part"));
        Assert.Contains(d.Log, l => l.Contains("removed 1 users with no train interaction"));
    }

    [Fact]
    public void Statistics_summarise_a_split()
    {
        var rows = new List<RawInteraction>();
        for (int u = 0; u < 3; u++)
            for (int i = 0; i <= 5 + 2 * u; i++)
                rows.Add(new RawInteraction(u.ToString(), i.ToString(), null, null, 0));
        var d = DataSplitter.Split("s", rows, SplitMethod.Order);
        var s = DatasetStatistics.Compute(d);
        Assert.Equal((3, 10, 24L), (s.Users, s.Items, s.Pairs));
        Assert.Equal((6, 8.0, 10), (s.MinPerUser, s.MedianPerUser, s.MaxPerUser));
        Assert.Equal(s.Pairs, s.Train + s.Valid + s.Test);
        Assert.Equal(24 / 30.0, s.Density, 12);
        Assert.Equal(2, s.ItemsWithoutTrain); // items 8 and 9 only come after the longest list's train cut
        Assert.Contains(s.ToLines(), l => l.Contains("median 8"));
    }
}
