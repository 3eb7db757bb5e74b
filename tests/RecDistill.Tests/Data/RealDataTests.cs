using RecDistill.Data;
using Xunit.Abstractions;

namespace RecDistill.Tests.Data;

/// <summary>Checks against the real datasets in ../shared/data when present (reported as skipped otherwise).</summary>
public class RealDataTests(ITestOutputHelper output)
{
    /// <summary>Walks up from the test binaries to a folder holding shared/data (sibling of the repository root).</summary>
    internal static string? FindSharedData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    [SharedDataFact("citeulike-t/users.dat")]
    public void Citeulike_matches_the_paper_protocol()
    {
        string path = Requirements.SharedData("citeulike-t/users.dat")!;
        var raw = DatasetReaders.ReadCiteulike(path);
        Assert.Equal(134_860, raw.Interactions.Count);
        Assert.Equal(7_947, raw.Interactions.Select(r => r.User).Distinct().Count());
        // The README's 25,975 articles is the id range (0..25,974); 25,584 of them occur.
        Assert.Equal(25_974, raw.Interactions.Max(r => int.Parse(r.Item)));
        Assert.Equal(25_584, raw.Interactions.Select(r => r.Item).Distinct().Count());

        var d = DatasetLoader.Load(new DataOptions { Format = DataFormat.Citeulike, Path = path });
        Assert.Equal(5_219, d.NumUsers);
        Assert.Equal(25_181, d.NumItems);
        Assert.Equal(98_405, d.TrainCount);
        Assert.Equal(12_451, d.ValidCount);
        Assert.Equal(14_724, d.TestCount);
        foreach (var line in d.Log) output.WriteLine(line);
    }

    [SharedDataFact("citeulike-t/users.dat")]
    public void Citeulike_as_a_quoted_csv_with_string_ids_gives_the_same_split()
    {
        string path = Requirements.SharedData("citeulike-t/users.dat")!;
        // users.dat rewritten as RFC 4180 text: BOM, quoted header and fields, CRLF, ids U00017 and ART000123.
        var csv = new System.Text.StringBuilder("\uFEFF\"user_id\",\"item_id\"\r\n");
        foreach (var r in DatasetReaders.ReadCiteulike(path).Interactions)
            csv.Append($"\"U{int.Parse(r.User):D5}\",\"ART{int.Parse(r.Item):D6}\"\r\n");
        using var dir = new TempDir();
        var fromCsv = DatasetLoader.Load(new DataOptions { Format = DataFormat.Csv, Path = dir.Write("citeulike.csv", csv.ToString()) });
        var fromDat = DatasetLoader.Load(new DataOptions { Format = DataFormat.Citeulike, Path = path });
        Assert.Equal(DatasetStatistics.Compute(fromDat) with { Name = "" }, DatasetStatistics.Compute(fromCsv) with { Name = "" });
        // Zero-padded ids keep the numeric dense order, so every train/valid/test list is the same: same seed, same metrics.
        Assert.Equal(fromDat.UserIds.Select(u => $"U{int.Parse(u):D5}"), fromCsv.UserIds);
        Assert.Equal(fromDat.ItemIds.Select(i => $"ART{int.Parse(i):D6}"), fromCsv.ItemIds);
        Assert.Equal(fromDat.Train, fromCsv.Train);
        Assert.Equal(fromDat.Valid, fromCsv.Valid);
        Assert.Equal(fromDat.Test, fromCsv.Test);
    }

    [SharedDataFact("amazon-sports")]
    public void Amazon_sports_pre_split_keeps_its_dense_ids()
    {
        string dir = Requirements.SharedData("amazon-sports")!;
        var d = DatasetLoader.Load(new DataOptions { Format = DataFormat.Split, Path = dir });
        Assert.Equal(35_598, d.NumUsers);
        Assert.Equal(18_357, d.NumItems);
        Assert.Equal((211_807L, 23_809L, 60_721L), (d.TrainCount, d.ValidCount, d.TestCount));
        Assert.Equal(Enumerable.Range(0, d.NumUsers).Select(i => i.ToString()), d.UserIds);
        foreach (var line in d.Log) output.WriteLine(line);
    }
}
