using RecDistill.Runs;
using System.Text.Json.Nodes;
using RecDistill.Cli;

namespace RecDistill.Tests.Cli;

public class CompareCliTests
{
    [Fact]
    public void Compare_writes_the_table_and_charts_and_reuses_finished_runs()
    {
        var root = TestData.TempDir();
        var outDir = Path.Combine(root, "cmp");
        var args = new[]
        {
            "compare", "--synthetic-users", "120", "--synthetic-items", "150", "--teacher-dim", "20", "--student-dim", "2",
            "--methods", "scratch,kd,mkd", "--seeds", "2", "--epochs", "4", "--eval-every", "2", "--lr", "0.01",
            "--batch-size", "256", "--threads", "1", "--out", outDir,
        };
        Assert.Equal(0, CliApp.Run(args));
        foreach (var f in new[] { "results.md", "results.csv", "results.json", "ndcg20.png", "recall20.png", "valid-ndcg20.png" })
            Assert.True(new FileInfo(Path.Combine(outDir, f)).Length > 0, f);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(outDir, "ndcg20.png"))[..4]);
        var records = Directory.GetFiles(Path.Combine(outDir, "records")).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { "kd-seed1.json", "kd-seed2.json", "mkd-seed1.json", "mkd-seed2.json", "scratch-seed1.json", "scratch-seed2.json", "teacher.json" }, records);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!;
        var rows = json["rows"]!.AsArray();
        Assert.Equal(new[] { "teacher", "scratch", "kd", "mkd" }, rows.Select(r => (string)r!["method"]!));
        Assert.All(rows.Skip(1), r => Assert.Equal(2, (int)r!["runs"]!));
        // The csv has one line per run, the markdown one row per method plus MKD against the best baseline.
        Assert.Equal(1 + 7, File.ReadAllLines(Path.Combine(outDir, "results.csv")).Length);
        var md = File.ReadAllText(Path.Combine(outDir, "results.md"));
        Assert.Contains("| mkd | 2 |", md);
        Assert.Contains("MKD against the best baseline", md);

        // Run again: every run is reused (same records), and the tables rebuild from records alone.
        var before = File.ReadAllText(Path.Combine(outDir, "records", "mkd-seed2.json"));
        var metricsTime = File.GetLastWriteTimeUtc(Path.Combine(outDir, "runs", "mkd-seed2", "metrics.json"));
        Assert.Equal(0, CliApp.Run(args));
        Assert.Equal(before, File.ReadAllText(Path.Combine(outDir, "records", "mkd-seed2.json")));
        Assert.Equal(metricsTime, File.GetLastWriteTimeUtc(Path.Combine(outDir, "runs", "mkd-seed2", "metrics.json")));
        var report = Path.Combine(root, "report");
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--report-only", "--records", Path.Combine(outDir, "records"), "--methods", "scratch,kd,mkd", "--out", report }));
        Assert.Equal(File.ReadAllText(Path.Combine(outDir, "results.csv")), File.ReadAllText(Path.Combine(report, "results.csv")));
        // --methods picks what the report shows, in its order; the other methods' records are left out, and said so.
        var (code, output) = RecDistill.Tests.Serving.ServingCliTests.Run("compare", "--report-only", "--records", Path.Combine(outDir, "records"), "--methods", "mkd,scratch", "--out", report);
        Assert.Equal(0, code);
        output = System.Text.RegularExpressions.Regex.Replace(output, @"\s+", " "); // the console wraps long lines
        Assert.Contains("from 5 records", output);
        Assert.Contains("(2 of other methods left out)", output);
        var subset = JsonNode.Parse(File.ReadAllText(Path.Combine(report, "results.json")))!["rows"]!.AsArray();
        Assert.Equal(new[] { "teacher", "mkd", "scratch" }, subset.Select(r => (string)r!["method"]!));
        Assert.Equal(1 + 5, File.ReadAllLines(Path.Combine(report, "results.csv")).Length);
        // Without --methods: every method with records.
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--report-only", "--records", Path.Combine(outDir, "records"), "--out", report }));
        Assert.Equal(File.ReadAllText(Path.Combine(outDir, "results.csv")), File.ReadAllText(Path.Combine(report, "results.csv")));
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--report-only", "--records", Path.Combine(outDir, "records"), "--methods", "sld", "--out", report }));
        var (_, _, absentWarning) = RecDistill.Tests.Serving.ServingCliTests.RunWithErrors("compare", "--report-only", "--records", Path.Combine(outDir, "records"), "--methods", "kd,sld", "--out", report);
        Assert.Contains("has no records of sld: the report leaves them out", absentWarning);
        var (noConfigs, _, configsError) = RecDistill.Tests.Serving.ServingCliTests.RunWithErrors("compare", "--teachers", Path.Combine(outDir, "teacher"), "--configs",
            Path.Combine(root, "nowhere"), "--methods", "kd", "--out", Path.Combine(root, "cmpZ"));
        Assert.Equal(2, noConfigs);
        Assert.Contains("no such directory", configsError);

        // Runs made elsewhere (train/distill) join a comparison as records and are not run again.
        var imported = Path.Combine(root, "imported");
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--report-only", "--records", Path.Combine(imported, "records"), "--out", imported,
            "--import", "teacher=" + Path.Combine(outDir, "teacher"), "--import", "kd:3=" + Path.Combine(outDir, "runs", "kd-seed1") }));
        Assert.True(File.Exists(Path.Combine(imported, "records", "kd-seed3.json")));
        Assert.Contains("| kd | 1 |", File.ReadAllText(Path.Combine(imported, "results.md")));
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--report-only", "--out", imported, "--import", "kd:x=" + outDir }));
        // A record says what its run was: the teacher's train run is not a kd run, nor a kd run a teacher.
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--report-only", "--out", imported, "--import", "kd:4=" + Path.Combine(outDir, "teacher") }));
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--report-only", "--out", imported, "--import", "teacher:2=" + Path.Combine(outDir, "runs", "kd-seed1") }));
        Assert.False(File.Exists(Path.Combine(imported, "records", "kd-seed4.json")));
        // A refused command writes none of its imports (nothing half-done): here its --methods have no records,
        // and in a run, its --configs folder does not exist.
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--report-only", "--out", imported, "--methods", "sld", "--import", "kd:5=" + Path.Combine(outDir, "runs", "kd-seed1") }));
        Assert.False(File.Exists(Path.Combine(imported, "records", "kd-seed5.json")));
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--teachers", Path.Combine(outDir, "teacher"), "--configs", Path.Combine(root, "nowhere"), "--methods", "kd",
            "--records", Path.Combine(root, "recX"), "--out", Path.Combine(root, "cmpY"), "--import", "kd:1=" + Path.Combine(outDir, "runs", "kd-seed1") }));
        Assert.False(Directory.Exists(Path.Combine(root, "recX")) && File.Exists(Path.Combine(root, "recX", "kd-seed1.json")));

        // A student is never written over its teacher.
        var teacherMetrics = File.ReadAllText(Path.Combine(outDir, "teacher", "metrics.json"));
        Assert.Equal(2, CliApp.Run(new[] { "distill", "--teacher", Path.Combine(outDir, "teacher"), "--out", Path.Combine(outDir, "teacher"),
            "--overwrite", "--method", "scratch", "--epochs", "1", "--threads", "1" }));
        Assert.Equal(teacherMetrics, File.ReadAllText(Path.Combine(outDir, "teacher", "metrics.json")));

        // A refused call (other settings than the runs in OUT) leaves OUT's resume.json as it was, so that
        // --resume still repeats the accepted command.
        var resumeFile = Path.Combine(outDir, "resume.json");
        var saved = File.ReadAllText(resumeFile);
        Assert.Equal(2, CliApp.Run(args.Select(a => a == "0.01" ? "0.02" : a).ToArray()));
        Assert.Equal(saved, File.ReadAllText(resumeFile));
    }

    [Fact]
    public void A_failing_run_is_reported_and_the_others_complete()
    {
        var outDir = Path.Combine(TestData.TempDir(), "cmp");
        // A directory where kd's metrics.json must go makes that one run fail at its end.
        Directory.CreateDirectory(Path.Combine(outDir, "runs", "kd-seed1", "metrics.json"));
        int rc = CliApp.Run(new[]
        {
            "compare", "--synthetic-users", "100", "--synthetic-items", "120", "--teacher-dim", "10", "--student-dim", "2",
            "--methods", "kd,scratch", "--seeds", "1", "--epochs", "2", "--eval-every", "1", "--batch-size", "256",
            "--threads", "1", "--out", outDir,
        });
        Assert.Equal(4, rc);
        Assert.True(File.Exists(Path.Combine(outDir, "records", "scratch-seed1.json")));
        Assert.False(File.Exists(Path.Combine(outDir, "records", "kd-seed1.json")));
        Assert.True(File.Exists(Path.Combine(outDir, "runs", "kd-seed1", "error.txt")));
        var md = File.ReadAllText(Path.Combine(outDir, "results.md"));
        Assert.Contains("Runs that failed", md);
        Assert.Contains("kd seed 1", md);
        Assert.Contains("| scratch | 1 |", md);
    }
}

public class ComparisonReportTests
{
    private static RunSummary Run(string method, int seed, double ndcg) => new()
    {
        Method = method, SeedIndex = method == RunSummary.TeacherMethod ? 0 : seed, Seed = seed, Dim = 8, Parameters = 100,
        Test = new() { ["recall@10"] = ndcg, ["recall@20"] = ndcg, ["ndcg@10"] = ndcg, ["ndcg@20"] = ndcg },
        Valid = new() { ["ndcg@20"] = ndcg },
    };

    [Fact]
    public void The_report_names_only_the_baselines_that_were_run_and_how_many_teacher_runs()
    {
        var records = new[] { Run(RunSummary.TeacherMethod, 0, 0.02), Run("scratch", 1, 0.01), Run("rrd", 1, 0.015), Run("de", 1, 0.012), Run("mkd", 1, 0.018) };
        var md = ComparisonReport.Write(TestData.TempDir(), "t", records, new[] { "scratch", "de", "rrd", "mkd" }, Array.Empty<string>());
        Assert.Contains("MKD against the best baseline among those run (DE, RRD) per metric:", md);
        Assert.Contains("- ndcg@20: MKD 0.0180 vs rrd 0.0150 (+20.0%)", md);
        Assert.Contains("(0.0180 vs 0.0200; the teacher is one run)", md);
        Assert.DoesNotContain("KD,", md);
    }
    [Fact]
    public void A_run_that_repeats_the_search_s_teacher_and_seed_is_warned_about()
    {
        var root = TestData.TempDir();
        var teacher = Path.Combine(root, "teacher");
        var tiny = new[] { "--epochs", "2", "--eval-every", "1", "--threads", "1" };
        Assert.Equal(0, CliApp.Run(new[] { "train", "--synthetic-users", "120", "--synthetic-items", "150", "--dim", "8", "--out", teacher }.Concat(tiny).ToArray()));
        // The choice a search on this teacher with seed 2023 would have written.
        var configs = Path.Combine(root, "tune");
        Directory.CreateDirectory(configs);
        var kd = new TunedConfig("kd", new TrialConfig("kd", 1e-3, new Dictionary<string, double> { ["lambda"] = 0.3, ["tau"] = 1 }), 0, 0.1, 2, 2023,
            Path.GetFullPath(teacher), "2026-12-05T00:00:00Z");
        File.WriteAllText(Path.Combine(configs, "kd.json"), System.Text.Json.JsonSerializer.Serialize(kd, RecDistill.Training.JsonOptions.Default));
        string[] Compare(string seed, string outDir) => new[] { "compare", "--teachers", teacher, "--configs", configs, "--methods", "kd", "--seed", seed, "--out", Path.Combine(root, outDir) }.Concat(tiny).ToArray();
        var (code, _, errors) = RecDistill.Tests.Serving.ServingCliTests.RunWithErrors(Compare("2023", "same"));
        Assert.Equal(0, code);
        Assert.Contains("warning: kd run 1 distils from the search's teacher with the search's seed", errors);
        (code, _, errors) = RecDistill.Tests.Serving.ServingCliTests.RunWithErrors(Compare("1", "fresh"));
        Assert.Equal(0, code);
        Assert.DoesNotContain("search's seed", errors);
    }
}
