using System.Text.Json.Nodes;
using RecDistill.Cli;

namespace RecDistill.Tests.Cli;

public class CliTests
{
    private static readonly string[] TinyData = { "--synthetic-users", "120", "--synthetic-items", "150" };

    [Fact]
    public void Train_writes_metrics_json_and_evaluate_reproduces_it()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        int rc = CliApp.Run(new[] { "train", "--dim", "8", "--epochs", "6", "--eval-every", "2", "--lr", "0.01", "--batch-size", "256", "--out", dir }
            .Concat(TinyData).ToArray());
        Assert.Equal(0, rc);
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!;
        foreach (var key in new[] { "users", "items", "train", "valid", "test" }) Assert.NotNull(m["dataset"]![key]);
        Assert.Equal("bpr", (string)m["model"]!["backbone"]!);
        Assert.Equal(8, (int)m["model"]!["dim"]!);
        Assert.Equal(((int)m["dataset"]!["users"]! + (int)m["dataset"]!["items"]!) * 8, (long)m["model"]!["parameters"]!);
        foreach (var key in new[] { "recall@10", "recall@20", "recall@50", "ndcg@10", "ndcg@20", "ndcg@50" })
        {
            Assert.InRange((double)m["valid"]![key]!, 0, 1);
            Assert.InRange((double)m["test"]![key]!, 0, 1);
        }
        Assert.True((int)m["best_epoch"]! >= 2);
        Assert.Equal(6, (int)m["epochs_run"]!);
        Assert.True(File.Exists(Path.Combine(dir, "model.bin")));
        Assert.StartsWith("recdistill train --dim 8", (string)m["command"]!);

        var evalOut = Path.Combine(dir, "eval.json");
        Assert.Equal(0, CliApp.Run(new[] { "evaluate", "--model", dir, "--out", evalOut }));
        var e = JsonNode.Parse(File.ReadAllText(evalOut))!;
        Assert.Equal((double)m["test"]!["ndcg@20"]!, (double)e["test"]!["ndcg@20"]!, 6);

        // The same directory again is refused without --overwrite, and nothing is changed.
        var before = File.ReadAllText(Path.Combine(dir, "metrics.json"));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--dim", "8", "--epochs", "1", "--out", dir }.Concat(TinyData).ToArray()));
        Assert.Equal(before, File.ReadAllText(Path.Combine(dir, "metrics.json")));
    }

    [Fact]
    public void Same_seed_gives_the_same_metrics_and_another_seed_other_ones()
    {
        var root = TestData.TempDir();
        JsonNode Run(string name, int seed)
        {
            var dir = Path.Combine(root, name);
            Assert.Equal(0, CliApp.Run(new[] { "train", "--dim", "8", "--epochs", "2", "--eval-every", "1", "--lr", "0.01",
                "--seed", seed.ToString(), "--out", dir }.Concat(TinyData).ToArray()));
            return JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!["valid"]!;
        }
        var a = Run("a", 4);
        var b = Run("b", 4);
        var c = Run("c", 5);
        Assert.Equal(a.ToJsonString(), b.ToJsonString());
        Assert.NotEqual(a.ToJsonString(), c.ToJsonString());
    }

    [Fact]
    public void Distill_reads_the_teacher_run_and_records_the_compression()
    {
        var root = TestData.TempDir();
        var teacher = Path.Combine(root, "teacher");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--dim", "20", "--epochs", "2", "--eval-every", "1", "--lr", "0.01", "--out", teacher }
            .Concat(TinyData).ToArray()));
        var student = Path.Combine(root, "mkd");
        Assert.Equal(0, CliApp.Run(new[] { "distill", "--teacher", teacher, "--method", "mkd", "--epochs", "2", "--eval-every", "1",
            "--lr", "0.01", "--out", student }));
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(student, "metrics.json")))!;
        Assert.Equal(2, (int)m["model"]!["dim"]!);
        var d = m["distillation"]!;
        Assert.Equal("mkd", (string)d["method"]!);
        Assert.Equal(20, (int)d["teacher_dim"]!);
        Assert.Equal(2, (int)d["student_dim"]!);
        Assert.Equal(0.1, (double)d["compression"]!, 3);
        Assert.NotNull(d["last_epoch_diagnostics"]!["cpd_inconsistency"]);
        var history = File.ReadAllLines(Path.Combine(student, "history.csv"));
        Assert.Contains("cpd_inconsistency", history[0]);
        Assert.Equal(3, history.Length);
        // Same users and items as the teacher: the split came from the teacher's run record.
        var t = JsonNode.Parse(File.ReadAllText(Path.Combine(teacher, "metrics.json")))!;
        Assert.Equal((int)t["dataset"]!["users"]!, (int)m["dataset"]!["users"]!);
    }

    [Theory]
    [InlineData("distill", "--teacher", "/no/such/run")]
    [InlineData("distill", "--teacher", "x", "--method", "magic")]
    [InlineData("train", "--data", "/no/such/file.csv")]
    [InlineData("train", "--model", "transformer")]
    [InlineData("train", "--dim", "0")]
    [InlineData("train", "--lr", "-1")]
    [InlineData("stats", "--format", "parquet", "--data", "x")]
    [InlineData("evaluate", "--model", "/no/such/run")]
    [InlineData("train", "--device", "tpu")]
    [InlineData("train", "--adam", "eager")]
    [InlineData("train", "--synthetic-items", "4")]
    [InlineData("evaluate", "--model", "/no/such/run", "--threads", "0")]
    [InlineData]
    public void User_mistakes_exit_non_zero_without_a_crash(params string[] args)
    {
        Assert.Equal(2, CliApp.Run(args)); // 2: a user error, not a failed (4) or diverged (3) run
    }

    [Fact]
    public void A_data_file_is_not_silently_dropped_for_generated_data()
    {
        var file = Path.Combine(TestData.TempDir(), "ratings.csv");
        File.WriteAllText(file, "1,2\n3,4\n");
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors("stats", "--data", file, "--format", "synthetic");
        Assert.Equal(2, code);
        Assert.Contains("with --format synthetic: synthetic data is generated", errors);
    }

    [Fact]
    public void Distill_refuses_adam_for_a_lightgcn_teacher_as_train_does_for_lightgcn()
    {
        var root = TestData.TempDir();
        string teacher = Path.Combine(root, "teacher"), student = Path.Combine(root, "student");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--model", "lightgcn", "--layers", "1", "--dim", "8", "--epochs", "1", "--threads", "1",
            "--out", teacher }.Concat(TinyData).ToArray()));
        // BPR's row-sparse Adam: a LightGCN student would ignore it, and its run.json would record "exact".
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors("distill", "--teacher", teacher, "--adam", "exact", "--epochs", "1", "--out", student);
        Assert.Equal(2, code);
        Assert.Contains("--adam has no effect with teacher", errors);
        Assert.False(Directory.Exists(student));
        // tune's students take the teacher's backbone too: the same refusal, nothing written.
        var tune = Path.Combine(root, "tune");
        (code, _, errors) = Serving.ServingCliTests.RunWithErrors("tune", "--teacher", teacher, "--methods", "scratch", "--trials", "1", "--adam", "exact",
            "--epochs", "1", "--out", tune);
        Assert.Equal(2, code);
        Assert.Contains("tune: --adam has no effect with teacher", errors);
        Assert.False(Directory.Exists(tune));
    }

    [Fact]
    public void A_student_of_a_lightgcn_teacher_takes_lightgcn_s_default_weight_decay()
    {
        var root = TestData.TempDir();
        string teacher = Path.Combine(root, "teacher"), student = Path.Combine(root, "student"), cmp = Path.Combine(root, "cmp");
        var tiny = new[] { "--synthetic-users", "120", "--synthetic-items", "150", "--epochs", "2", "--eval-every", "1", "--threads", "1" };
        Assert.Equal(0, CliApp.Run(new[] { "train", "--model", "lightgcn", "--layers", "1", "--dim", "8", "--out", teacher }.Concat(tiny).ToArray()));
        double Decay(string dir) => (double)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "run.json")))!["train"]!["weight_decay"]!;
        Assert.Equal(1e-4, Decay(teacher));
        // --model is not given (its default is bpr): the student's backbone is the teacher's, and so is the default.
        Assert.Equal(0, CliApp.Run(new[] { "distill", "--teacher", teacher, "--method", "scratch", "--epochs", "2", "--threads", "1", "--out", student }));
        Assert.Equal(1e-4, Decay(student));
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--teachers", teacher, "--methods", "scratch", "--epochs", "2", "--threads", "1", "--out", cmp }));
        Assert.Equal(1e-4, Decay(Path.Combine(cmp, "runs", "scratch-seed1")));
        var tune = Path.Combine(root, "tune");
        Assert.Equal(0, CliApp.Run(new[] { "tune", "--teacher", teacher, "--methods", "scratch", "--trials", "1", "--epochs", "2", "--threads", "1", "--out", tune }));
        Assert.Equal(1e-4, Decay(Path.Combine(tune, "scratch", "trial-0")));
    }

    [Fact]
    public async Task Without_a_terminal_progress_goes_to_standard_error_and_results_to_standard_output()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll"), "train", "--synthetic-users", "600", "--synthetic-items", "800",
                     "--dim", "16", "--epochs", "60", "--eval-every", "30", "--patience", "5", "--threads", "1", "--out", dir })
            start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
        var output = await stdout;
        Assert.Contains("test metrics", output);
        // No progress bar in what a script reads: neither its refreshes nor its last state.
        Assert.DoesNotContain(" loss ", output);
        Assert.DoesNotContain("done: best epoch", output);
        // Nor the status of a step (loading the data): a line on standard error.
        Assert.DoesNotContain("Loading ", output);
        Assert.Contains("Loading synthetic", stderr);
        // Nor a progress note (here: a resumed run that had not reached its first checkpoint).
        var again = Path.Combine(TestData.TempDir(), "again");
        ResumableRun.Record(again, "train", new[] { "--synthetic-users", "100", "--synthetic-items", "120", "--dim", "8", "--epochs", "2",
            "--threads", "1", "--out", again });
        var (resumeCode, resumeOut, resumeErr) = RecDistill.Tests.Serving.ServingCliTests.RunWithErrors("train", "--resume", again);
        Assert.Equal(0, resumeCode);
        Assert.DoesNotContain("has no checkpoint yet", resumeOut);
        Assert.Contains("has no checkpoint yet", resumeErr);
        // (A bar without a terminal prints its state every few seconds: the run is long enough for that.)
        Assert.Contains("bpr d=16: epoch 30 loss", stderr);
        Assert.Contains("bpr d=16: epoch 60 loss", stderr);
    }

    [Fact]
    public async Task Malformed_file_is_reported_with_its_line()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "bad.csv");
        File.WriteAllText(path, "1,2\n3,4\n5,\"x\n");
        // As a user runs it: the error is on standard error, and standard output holds none of it.
        var dll = Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "stats", "--data", path, "--format", "csv" }) start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("error: ", stderr);
        Assert.Contains("bad.csv:3", stderr);
        Assert.DoesNotContain("bad.csv:3", await stdout);
    }
}
