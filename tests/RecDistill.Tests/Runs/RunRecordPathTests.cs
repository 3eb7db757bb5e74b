using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Runs;

namespace RecDistill.Tests.Runs;

/// <summary>
/// A run finds its own data again: run.json names it so that evaluate, export and distill find the same file from
/// any directory, and other data given for it (--data) must hold the same ids.
/// </summary>
public class RunRecordPathTests
{
    /// <summary>40 users with up to 8 of 30 items each, as user,item lines.</summary>
    private static string Csv(string dir)
    {
        string path = Path.Combine(dir, "d.csv");
        File.WriteAllLines(path, Enumerable.Range(0, 320).Select(n => $"u{n / 8},i{(n * 7919) % 30}").Distinct());
        return path;
    }

    [Fact]
    public void An_unfinished_run_is_named_as_one_with_how_to_finish_it()
    {
        var dir = Path.Combine(TestData.TempDir(), "stopped");
        Directory.CreateDirectory(dir);
        // A run stopped before its end: its checkpoint, no run.json (the distillation's teacher, or evaluate's run).
        File.WriteAllBytes(RunDirectory.CheckpointPath(dir), new byte[] { 1 });
        var e = Assert.Throws<UserErrorException>(() => RunDirectory.ReadRecord(dir));
        Assert.Contains("is an unfinished run", e.Message);
        Assert.Contains("--resume", e.Message);
        File.Delete(RunDirectory.CheckpointPath(dir));
        Assert.Contains("is not a run directory: run.json is missing", Assert.Throws<UserErrorException>(() => RunDirectory.ReadRecord(dir)).Message);
    }

    [Fact]
    public void A_relative_data_path_is_recorded_absolute()
    {
        var root = TestData.TempDir();
        var csv = Csv(root);
        // The path as a user types it, relative to the working directory (the test's own, left as it is).
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, csv);
        Assert.False(Path.IsPathRooted(relative));
        var run = Path.Combine(root, "run");
        Workflow.Train(new DataOptions { Format = DataFormat.Csv, Path = relative, MinUserInteractions = 0 }, new ModelShape(Backbone.Bpr, 4),
            TestData.ShortTraining(1) with { MaxEpochs = 1 }, new RunOutput(run));
        var recorded = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(run, RunDirectory.RunFile)))!["data"]!["path"]!;
        Assert.Equal(Path.GetFullPath(csv), recorded);
    }

    [Fact]
    public void An_earlier_record_s_relative_path_that_is_not_found_is_explained()
    {
        var root = TestData.TempDir();
        var run = Path.Combine(root, "run");
        Workflow.Train(new DataOptions { Format = DataFormat.Csv, Path = Csv(root), MinUserInteractions = 0 }, new ModelShape(Backbone.Bpr, 4),
            TestData.ShortTraining(1) with { MaxEpochs = 1 }, new RunOutput(run));
        var file = Path.Combine(run, RunDirectory.RunFile);
        var record = JsonNode.Parse(File.ReadAllText(file))!;
        record["data"]!["path"] = "no-such-dir-7f3/d.csv";
        File.WriteAllText(file, record.ToJsonString());
        var e = Assert.Throws<UserErrorException>(() => Workflow.Evaluate(run));
        Assert.Contains("names its data by the relative path 'no-such-dir-7f3/d.csv'", e.Message);
        Assert.Contains("--data", e.Message);
    }
    [Fact]
    public void Other_data_with_the_same_counts_but_other_ids_is_refused()
    {
        var root = TestData.TempDir();
        var csv = Csv(root);
        var run = Path.Combine(root, "run");
        var train = TestData.ShortTraining(1) with { MaxEpochs = 1 };
        Workflow.Train(new DataOptions { Format = DataFormat.Csv, Path = csv, MinUserInteractions = 0 }, new ModelShape(Backbone.Bpr, 4), train, new RunOutput(run));
        // The same file elsewhere is the same data.
        var copy = Path.Combine(Directory.CreateDirectory(Path.Combine(root, "moved")).FullName, "d.csv");
        File.Copy(csv, copy);
        Assert.Equal(Workflow.Evaluate(run).Test["ndcg@20"], Workflow.Evaluate(run, data: new DataOptions { Format = DataFormat.Csv, Path = copy, MinUserInteractions = 0 }).Test["ndcg@20"]);
        // Every id renamed: the same counts, so the model file alone would take it.
        var renamed = Path.Combine(root, "renamed.csv");
        File.WriteAllLines(renamed, File.ReadAllLines(csv).Select(l => "X" + l.Replace(",", ",Y")));
        var other = new DataOptions { Format = DataFormat.Csv, Path = renamed, MinUserInteractions = 0 };
        var e = Assert.Throws<UserErrorException>(() => Workflow.Evaluate(run, data: other));
        Assert.Contains("holds other user or item ids than", e.Message);
        Assert.Throws<UserErrorException>(() => Workflow.Distill(run, "scratch", train, data: other, output: new RunOutput(Path.Combine(root, "student"))));
        Assert.False(Directory.Exists(Path.Combine(root, "student")));
    }
}
