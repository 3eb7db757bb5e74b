using System.Text.Json.Nodes;
using RecDistill.Cli;
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Tests.Runs;

public class TuningTests
{
    private static readonly DataOptions Tiny = TestData.TinySynthetic(3);
    private static readonly TrainOptions Short = TestData.ShortTraining(5);

    internal static string Teacher()
    {
        var dir = Path.Combine(TestData.TempDir(), "teacher");
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Short, new RunOutput(dir));
        return dir;
    }

    [Fact]
    public void Trials_see_no_test_set_and_the_best_validation_trial_is_chosen()
    {
        var teacher = Teacher();
        using (var session = TeacherSession.Open(teacher, null, null, null, null, withoutTest: true))
        {
            Assert.Equal(0, session.Data.TestCount);
            Assert.True(session.Data.ValidCount > 0);
        }
        var outDir = Path.Combine(TestData.TempDir(), "tune");
        var log = new StringWriter();
        var tuned = Tuning.Tune(teacher, new[] { "scratch", "kd" }, Short, trials: 3, outDir, reporter: new TextReporter(log));
        Assert.Equal(new[] { "scratch", "kd" }, tuned.Select(t => t.Method));
        // Each trial after the first says how much of the method's search is left, from the finished trials.
        Assert.Contains("kd trial 2 (3 of 3)", log.ToString());
        Assert.Contains("(2 of 3 trials done, under a minute more at their mean)", log.ToString());
        Assert.DoesNotContain("kd trial 0 (1 of 3): weight decay 0.001, lambda 0.3, tau 1 (", log.ToString());
        Assert.Contains("kd trial 0 (1 of 3): weight decay 0.001, lambda 0.3, tau 1", log.ToString());
        foreach (var t in tuned)
        {
            var trials = Enumerable.Range(0, 3).Select(k =>
                JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, t.Method, $"trial-{k}.json")))!).ToList();
            double best = trials.Max(x => (double)x["valid_ndcg20"]!);
            Assert.Equal(best, t.ValidNdcg20);
            Assert.Equal(best, (double)trials[t.Trial]["valid_ndcg20"]!);
            for (int k = 0; k < 3; k++)
            {
                // Each trial's run was evaluated on no test user: its split had none.
                var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, t.Method, $"trial-{k}", RunDirectory.MetricsFile)))!;
                Assert.Equal(0, (int)metrics["test"]!["users"]!);
                Assert.Null(metrics["test"]!["ndcg@20"]);
                Assert.True((int)metrics["valid"]!["users"]! > 0);
            }
            Assert.NotNull(Tuning.ReadTuned(outDir, t.Method));
        }
        // The report lists every trial and marks the chosen one.
        var report = File.ReadAllLines(Path.Combine(outDir, "trials.csv"));
        Assert.Equal(1 + 6, report.Length);
        Assert.Single(report, l => l.StartsWith($"kd,{tuned[1].Trial},1,", StringComparison.Ordinal));
        Assert.Contains("(chosen)", File.ReadAllText(Path.Combine(outDir, "trials.md")));

        // A trial with several loss terms shows each one's share of the gradient norm over its run,
        // recomputed here from its history: the mean of grad_TERM over the epochs, over the sum of those means.
        var kdRow = report.Single(l => l.StartsWith("kd,2,", StringComparison.Ordinal)).Split(',');
        var shown = kdRow[^1].Split(' ').Select(x => x.Split('=')).ToDictionary(x => x[0], x => double.Parse(x[1], System.Globalization.CultureInfo.InvariantCulture));
        var history = File.ReadAllLines(Path.Combine(outDir, "kd", "trial-2", RunDirectory.HistoryFile));
        var header = history[0].Split(',');
        double MeanOf(string column) => history.Skip(1).Average(l =>
            double.Parse(l.Split(',')[Array.IndexOf(header, column)], System.Globalization.CultureInfo.InvariantCulture));
        double bpr = MeanOf("grad_bpr"), kdGrad = MeanOf("grad_kd");
        Assert.Equal(new[] { "bpr", "kd" }, shown.Keys.Order());
        Assert.Equal(kdGrad / (bpr + kdGrad), shown["kd"], 4);
        Assert.Equal(bpr / (bpr + kdGrad), shown["bpr"], 4);
        Assert.Equal("", report.Single(l => l.StartsWith("scratch,0,", StringComparison.Ordinal)).Split(',')[^1]); // one term only
        Assert.Contains("gradient shares (whole run)", File.ReadAllText(Path.Combine(outDir, "trials.md")));
        // The search's budget: the recorded trials' training time, per method and in all.
        double seconds = report.Skip(1).Sum(l => double.Parse(l.Split(',')[8], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains(FormattableString.Invariant($"| all | 6 | {seconds / 3600:F2} |"), File.ReadAllText(Path.Combine(outDir, "trials.md")));

        // Trial 0 is the defaults with the run's weight decay; the others are the seeded draws.
        var kd = Tuning.ReadTuned(outDir, "kd")!;
        Assert.Equal(3, kd.Trials);
        var trial0 = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "kd", "trial-0.json")))!;
        Assert.Equal(Short.WeightDecay, (double)trial0["config"]!["weight_decay"]!);
        Assert.Equal(new RecDistill.Distillation.KdOptions().Lambda, (double)trial0["config"]!["parameters"]!["lambda"]!);

        // Run again: every trial is recorded, nothing is trained, the same choice comes back.
        var stamps = Directory.GetFiles(outDir, "metrics.json", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var choices = new[] { "scratch", "kd" }.ToDictionary(m => m, m => File.ReadAllText(Path.Combine(outDir, m + ".json")));
        var again = Tuning.Tune(teacher, new[] { "scratch", "kd" }, Short, trials: 3, outDir);
        Assert.Equal(tuned.Select(t => (t.Trial, t.ValidNdcg20)), again.Select(t => (t.Trial, t.ValidNdcg20)));
        Assert.All(stamps, kv => Assert.Equal(kv.Value, File.GetLastWriteTimeUtc(kv.Key)));
        // The same choice leaves its record as it was, creation time included.
        Assert.All(choices, kv => Assert.Equal(kv.Value, File.ReadAllText(Path.Combine(outDir, kv.Key + ".json"))));
    }

    [Fact]
    public void A_search_continued_with_other_settings_is_refused_and_names_what_differs()
    {
        var teacher = Teacher();
        var outDir = Path.Combine(TestData.TempDir(), "tune");
        Tuning.Tune(teacher, new[] { "scratch" }, Short, trials: 1, outDir);
        Assert.True(File.Exists(Path.Combine(outDir, Tuning.SearchFile)));

        var seed = Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "scratch" }, Short with { Seed = Short.Seed + 1 }, trials: 2, outDir));
        Assert.Contains("--seed 5 there, 6 here", seed.Message);
        var dim = Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 1, outDir, studentDim: 3));
        Assert.Contains("--dim 1 there, 3 here", dim.Message);
        var other = Teacher();
        var moved = Assert.Throws<UserErrorException>(() => Tuning.Tune(other, new[] { "kd" }, Short, trials: 1, outDir));
        Assert.Contains("--teacher", moved.Message);
        Assert.False(Directory.Exists(Path.Combine(outDir, "kd"))); // nothing of the refused calls was written

        // The same settings continue the search.
        var same = Assert.Single(Tuning.Tune(teacher, new[] { "scratch" }, Short, trials: 1, outDir));
        Assert.Equal(1, same.Trials);
    }

    [Fact]
    public void A_search_keeps_its_trial_count_and_refuses_another_naming_both()
    {
        var teacher = Teacher();
        var outDir = Path.Combine(TestData.TempDir(), "tune");
        Tuning.Tune(teacher, new[] { "scratch", "kd" }, Short, trials: 2, outDir);
        Assert.Equal(2, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, Tuning.SearchFile)))!["trials"]!);
        var choice = File.ReadAllText(Path.Combine(outDir, "kd.json"));

        // Fewer trials would rewrite kd.json from the first one only, more would extend one method's budget: both refused.
        var fewer = Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 1, outDir));
        Assert.Contains("--trials 2 there, 1 here", fewer.Message);
        Assert.Contains("the trial count is the search's budget", fewer.Message);
        var more = Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 3, outDir));
        Assert.Contains("--trials 2 there, 3 here", more.Message);
        Assert.Equal(choice, File.ReadAllText(Path.Combine(outDir, "kd.json")));
        Assert.False(File.Exists(Path.Combine(outDir, "kd", "trial-2.json")));

        // A search.json of an earlier build has no trial count: the search's METHOD.json files name it.
        var search = Path.Combine(outDir, Tuning.SearchFile);
        var old = JsonNode.Parse(File.ReadAllText(search))!.AsObject();
        old.Remove("trials");
        File.WriteAllText(search, old.ToJsonString());
        fewer = Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 1, outDir));
        Assert.Contains("--trials 2 there, 1 here", fewer.Message);
        Assert.Null(JsonNode.Parse(File.ReadAllText(search))!["trials"]); // a refused call writes nothing
        Assert.Equal(2, Assert.Single(Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 2, outDir)).Trials);
        Assert.Equal(2, (int)JsonNode.Parse(File.ReadAllText(search))!["trials"]!); // recorded from now on
        Assert.Equal(choice, File.ReadAllText(Path.Combine(outDir, "kd.json")));
    }

    [Fact]
    public void A_call_refused_for_its_teacher_writes_nothing_and_leaves_the_directory_free()
    {
        var teacher = Teacher();
        var root = TestData.TempDir();
        var outDir = Path.Combine(root, "tune");
        // Not a run directory (with --dim given, nothing else reads the teacher's record before the search would begin).
        var notARun = Directory.CreateDirectory(Path.Combine(root, "notarun")).FullName;
        Assert.Throws<UserErrorException>(() => Tuning.Tune(notARun, new[] { "scratch" }, Short, trials: 1, outDir, studentDim: 2));
        Assert.False(Directory.Exists(outDir));
        // A teacher whose run.json reads but whose model.bin does not.
        var corrupt = Directory.CreateDirectory(Path.Combine(root, "corrupt")).FullName;
        foreach (var file in Directory.GetFiles(teacher)) File.Copy(file, Path.Combine(corrupt, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(corrupt, "model.bin"), "not a model");
        Assert.Throws<DataFormatException>(() => Tuning.Tune(corrupt, new[] { "scratch" }, Short, trials: 1, outDir));
        Assert.False(Directory.Exists(outDir));
        Assert.Equal(2, CliApp.Run(new[] { "tune", "--teacher", corrupt, "--methods", "scratch", "--trials", "1", "--epochs", "2", "--out", outDir }));
        Assert.False(Directory.Exists(outDir));
        // An unknown method and bad training settings are refused before anything is written too.
        Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "scratch", "nosuch" }, Short, trials: 1, outDir));
        Assert.Throws<ArgumentException>(() => Tuning.Tune(teacher, new[] { "scratch" }, Short with { BatchSize = 0 }, trials: 1, outDir));
        Assert.False(Directory.Exists(outDir));
        // No method: it wrote search.json and returned nothing.
        var none = Assert.Throws<ArgumentException>(() => Tuning.Tune(teacher, Array.Empty<string>(), Short, trials: 1, outDir));
        Assert.Equal("methods", none.ParamName);
        Assert.False(Directory.Exists(outDir));
        // The directory is free for the correct call.
        Assert.Single(Tuning.Tune(teacher, new[] { "scratch" }, Short, trials: 1, outDir));
        // A search's own trial (a distilled student) is no teacher for another search.
        var other = Path.Combine(root, "tune2");
        var student = Assert.Throws<UserErrorException>(() => Tuning.Tune(Path.Combine(outDir, "scratch", "trial-0"), new[] { "scratch" }, Short, trials: 1, other));
        Assert.Contains("is a distilled student (scratch of", student.Message);
        Assert.False(Directory.Exists(other));
    }

    [Fact]
    public void A_teacher_replaced_at_its_path_does_not_continue_the_search()
    {
        var teacher = Teacher();
        var outDir = Path.Combine(TestData.TempDir(), "tune");
        Tuning.Tune(teacher, new[] { "scratch" }, Short, trials: 1, outDir);
        var search = Path.Combine(outDir, Tuning.SearchFile);
        var fingerprint = (string)JsonNode.Parse(File.ReadAllText(search))!["teacher_model_sha256"]!;
        Assert.Equal(64, fingerprint.Length);

        // The teacher retrained in its directory with another learning rate: same path, same dimension, another model.
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Short with { LearningRate = Short.LearningRate / 2 }, new RunOutput(teacher) { Overwrite = true });
        var replaced = Assert.Throws<UserErrorException>(() => Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 1, outDir));
        Assert.Contains($"the teacher's model.bin has SHA-256 {fingerprint[..12]}... there", replaced.Message);
        Assert.Contains("is not the one the search began with", replaced.Message);
        Assert.False(Directory.Exists(Path.Combine(outDir, "kd")));

        // A search.json of an earlier build has no fingerprint: the current teacher's is adopted and recorded.
        var old = JsonNode.Parse(File.ReadAllText(search))!.AsObject();
        old.Remove("teacher_model_sha256");
        File.WriteAllText(search, old.ToJsonString());
        Assert.Single(Tuning.Tune(teacher, new[] { "scratch" }, Short, trials: 1, outDir));
        var adopted = (string)JsonNode.Parse(File.ReadAllText(search))!["teacher_model_sha256"]!;
        Assert.NotEqual(fingerprint, adopted);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(teacher, "model.bin")))), adopted);
    }

    [Fact]
    public void A_diverging_trial_is_recorded_as_failed_and_the_search_goes_on()
    {
        var teacher = Teacher();
        var outDir = Path.Combine(TestData.TempDir(), "tune");
        // A learning rate of 1e30 makes every trial's loss non-finite in its first epoch.
        var wild = Short with { LearningRate = 1e30 };
        var e = Assert.Throws<TrainingDivergedException>(() => Tuning.Tune(teacher, new[] { "scratch", "kd" }, wild, trials: 2, outDir));
        Assert.Contains("every trial of scratch, kd failed", e.Message);
        var records = new[] { "scratch", "kd" }.SelectMany(m => Enumerable.Range(0, 2).Select(k => Path.Combine(outDir, m, $"trial-{k}.json"))).ToList();
        foreach (var path in records)
        {
            var record = JsonNode.Parse(File.ReadAllText(path))!;
            Assert.StartsWith("training diverged: loss is", (string)record["failure"]!);
            Assert.Equal(-1, (double)record["valid_ndcg20"]!);
        }
        Assert.Null(Tuning.ReadTuned(outDir, "scratch"));
        Assert.Null(Tuning.ReadTuned(outDir, "kd"));
        var md = File.ReadAllText(Path.Combine(outDir, "trials.md"));
        Assert.Contains("## kd (2 trials, 2 failed, every trial failed: no choice)", md);
        Assert.Contains("| failed: training diverged: loss is ", md);
        Assert.Contains("scratch,1,0,", File.ReadAllText(Path.Combine(outDir, "trials.csv")));
        // Run again: the failed trials are recorded, so nothing trains again, and the answer is the same.
        var stamps = records.ToDictionary(f => f, File.GetLastWriteTimeUtc);
        Assert.Throws<TrainingDivergedException>(() => Tuning.Tune(teacher, new[] { "scratch", "kd" }, wild, trials: 2, outDir));
        Assert.All(stamps, kv => Assert.Equal(kv.Value, File.GetLastWriteTimeUtc(kv.Key)));
        // From the command line: exit code 3 and one line saying which method has no choice.
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors("tune", "--teacher", teacher, "--methods", "scratch", "--trials", "1",
            "--lr", "1e30", "--epochs", "2", "--out", Path.Combine(TestData.TempDir(), "cli"));
        Assert.Equal(3, code);
        Assert.Contains("every trial of scratch failed", errors);

        // The choice passes over a failed trial, whatever its recorded score.
        var mixed = Path.Combine(TestData.TempDir(), "mixed");
        var first = Assert.Single(Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 2, mixed));
        var chosenPath = Path.Combine(mixed, "kd", $"trial-{first.Trial}.json");
        var chosen = JsonNode.Parse(File.ReadAllText(chosenPath))!;
        chosen["failure"] = "training diverged: loss is NaN at epoch 2, batch 1/3 (injected by the test)";
        File.WriteAllText(chosenPath, chosen.ToJsonString());
        File.Delete(Path.Combine(mixed, "kd.json"));
        var second = Assert.Single(Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 2, mixed));
        Assert.Equal(1 - first.Trial, second.Trial);
        Assert.Contains("## kd (2 trials, 1 failed)", File.ReadAllText(Path.Combine(mixed, "trials.md")));
    }

    [Fact]
    public void A_distillation_without_test_trains_the_same_student_and_reports_no_test()
    {
        var teacher = Teacher();
        var root = TestData.TempDir();
        var full = Workflow.Distill(teacher, "sld", Short, studentDim: 4, output: new RunOutput(Path.Combine(root, "full")));
        var blind = Workflow.Distill(teacher, "sld", Short, studentDim: 4, output: new RunOutput(Path.Combine(root, "blind")), withoutTest: true);
        Assert.True(full.Test.Users > 0);
        Assert.Equal(0, blind.Test.Users);
        Assert.False(File.Exists(Path.Combine(root, "blind", RunDirectory.TestUsersFile)));
        // The test set is held out of training either way: the same seed gives the same model.
        Assert.Equal(full.Valid["ndcg@20"], blind.Valid["ndcg@20"]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(root, "full", "model.bin")), File.ReadAllBytes(Path.Combine(root, "blind", "model.bin")));

        // Evaluating the blind run keeps its test held out unless asked; the full run's test is scored as before.
        var blindDir = Path.Combine(root, "blind");
        var kept = Workflow.Evaluate(blindDir);
        Assert.True(kept.TestHeldOut);
        Assert.Equal(0, kept.Test.Users);
        Assert.Equal(blind.Valid["ndcg@20"], kept.Valid["ndcg@20"], 6);
        Assert.True(kept.Json["test_held_out"]!.GetValue<bool>());
        var asked = Workflow.Evaluate(blindDir, null, null, null, scoreHeldOutTest: true);
        Assert.False(asked.TestHeldOut);
        Assert.Equal(full.Test["ndcg@20"], asked.Test["ndcg@20"], 6);
        var plain = Workflow.Evaluate(Path.Combine(root, "full"));
        Assert.False(plain.TestHeldOut);
        Assert.Equal(full.Test["ndcg@20"], plain.Test["ndcg@20"], 6);

        // The CLI: the JSON of --out says the test is held out and has no test metrics; --with-test scores it.
        var outKept = Path.Combine(root, "kept.json");
        Assert.Equal(0, RecDistill.Cli.CliApp.Run(new[] { "evaluate", "--model", blindDir, "--out", outKept }));
        var jKept = JsonNode.Parse(File.ReadAllText(outKept))!;
        Assert.True(jKept["test_held_out"]!.GetValue<bool>());
        Assert.Null(jKept["test"]!["ndcg@20"]);
        var outAsked = Path.Combine(root, "asked.json");
        Assert.Equal(0, RecDistill.Cli.CliApp.Run(new[] { "evaluate", "--model", blindDir, "--with-test", "--out", outAsked }));
        Assert.Equal(full.Test["ndcg@20"], JsonNode.Parse(File.ReadAllText(outAsked))!["test"]!["ndcg@20"]!.GetValue<double>(), 6);
    }

    [Fact]
    public void A_trial_held_by_another_process_is_skipped_and_the_last_one_to_finish_chooses()
    {
        var teacher = Teacher();
        var outDir = Path.Combine(TestData.TempDir(), "tune");
        var lockPath = Path.Combine(outDir, "kd", "trial-1.lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            // Trial 1 is held elsewhere: this process runs trials 0 and 2 and leaves the choice open.
            var partial = Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 3, outDir);
            Assert.Empty(partial);
            Assert.True(File.Exists(Path.Combine(outDir, "kd", "trial-0.json")));
            Assert.False(File.Exists(Path.Combine(outDir, "kd", "trial-1.json")));
            Assert.True(File.Exists(Path.Combine(outDir, "kd", "trial-2.json")));
            Assert.Null(Tuning.ReadTuned(outDir, "kd"));
        }
        // Once the holder is gone, the trial is free: the next process runs it alone and chooses among all three.
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(outDir, "kd", "trial-0.json"));
        var tuned = Assert.Single(Tuning.Tune(teacher, new[] { "kd" }, Short, trials: 3, outDir));
        Assert.True(File.Exists(Path.Combine(outDir, "kd", "trial-1.json")));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(outDir, "kd", "trial-0.json")));
        Assert.False(File.Exists(lockPath));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(outDir, "kd"), "trial-*.json").Length);
        Assert.Equal(tuned.Trial, Tuning.ReadTuned(outDir, "kd")!.Trial);
    }

    [Theory]
    [InlineData("scratch")]
    [InlineData("kd")]
    [InlineData("htd")]
    [InlineData("sld")]
    [InlineData("mkd")]
    public void Draws_are_seeded_by_seed_and_trial_and_stay_in_their_ranges(string method)
    {
        var space = Tuning.SpaceOf(method);
        Assert.Equal(Tuning.WeightDecay, space[0].Name);
        for (int k = 1; k < 20; k++)
        {
            var a = Tuning.Draw(method, Backbone.Bpr, 1e-3, 11, k);
            var b = Tuning.Draw(method, Backbone.Bpr, 1e-3, 11, k);
            Assert.Equal(a.WeightDecay, b.WeightDecay);
            Assert.Equal(a.Parameters, b.Parameters);
            Assert.InRange(a.WeightDecay, space[0].Low * 0.999, space[0].High * 1.001);
            foreach (var dim in space.Skip(1)) Assert.InRange(a.Parameters[dim.Name], dim.Low * 0.999, dim.High * 1.001);
        }
        Assert.NotEqual(Tuning.Draw(method, Backbone.Bpr, 1e-3, 11, 1).WeightDecay, Tuning.Draw(method, Backbone.Bpr, 1e-3, 12, 1).WeightDecay);
        // The drawn values reach the method's options.
        var draw = Tuning.Draw(method, Backbone.Bpr, 1e-3, 11, 3);
        var options = Tuning.Apply(draw, Backbone.Bpr);
        if (method == "mkd") Assert.Equal(draw.Parameters["lambda_sld"], options.Sld.Lambda);
        if (method == "kd") Assert.Equal(draw.Parameters["tau"], options.Kd.Tau);
        if (method == "htd") Assert.Equal(draw.Parameters["alpha"], options.Htd.Alpha);
    }

    [Fact]
    public void A_malformed_or_mismatched_tuned_config_is_refused_naming_the_file()
    {
        // The files tune wrote for the benchmark read as they always did.
        var bench = Path.Combine(TestData.RepoRoot, "results", "citeulike", "bench", "tune");
        foreach (var file in Directory.GetFiles(bench, "*.json"))
        {
            var method = Path.GetFileNameWithoutExtension(file);
            var tuned = Tuning.ReadTuned(bench, method)!;
            Assert.Equal(method, tuned.Method);
            Assert.Equal(8, tuned.Trials);
            Assert.Equal(JsonNode.Parse(File.ReadAllText(file))!["config"]!["parameters"]!.AsObject().Count, tuned.Config.Parameters.Count);
        }
        var mkd = File.ReadAllText(Path.Combine(bench, "mkd.json"));
        var sld = File.ReadAllText(Path.Combine(bench, "sld.json"));

        var dir = TestData.TempDir();
        var kd = Path.Combine(dir, "kd.json");
        void Refused(string json, string expected)
        {
            File.WriteAllText(kd, json);
            var e = Assert.Throws<UserErrorException>(() => Tuning.ReadTuned(dir, "kd"));
            Assert.Contains(kd, e.Message);
            Assert.Contains(expected, e.Message);
        }
        Refused("{}", "missing required properties");
        Refused(sld, "its \"method\" is sld, not kd");
        var node = JsonNode.Parse(sld)!;
        node["method"] = "kd";
        Refused(node.ToJsonString(), "its \"config\" is of sld, not kd");
        node["config"]!["method"] = "kd";
        Refused(node.ToJsonString(), "kd has no searched parameter \"beta\" (it searches lambda, tau)");
        node = JsonNode.Parse(mkd.Replace("mkd", "kd", StringComparison.Ordinal))!;
        node["config"]!["parameters"] = new JsonObject { ["lambda"] = 0.5, ["tau"] = 2.0 };
        node["tuned_by"] = "hand";
        Refused(node.ToJsonString(), "'tuned_by' could not be mapped");
        node.AsObject().Remove("tuned_by");
        node["config"]!["weight_decay"] = null;
        Refused(node.ToJsonString(), "weight_decay");
        node["config"]!["weight_decay"] = -1e-4;
        Refused(node.ToJsonString(), "weight_decay -0.0001 is not 0 or a positive number");
        node["config"]!["weight_decay"] = 1e-4;
        File.WriteAllText(kd, node.ToJsonString());
        Assert.Equal(2.0, Tuning.ReadTuned(dir, "kd")!.Config.Parameters["tau"]);

        // compare --configs: one line naming the file, exit 2, nothing trained.
        File.WriteAllText(kd, "{}");
        var outDir = Path.Combine(TestData.TempDir(), "compare");
        var (code, _, errors) = Serving.ServingCliTests.RunWithErrors("compare", "--methods", "kd", "--seeds", "1", "--teacher-dim", "8", "--epochs", "2",
            "--synthetic-users", "120", "--synthetic-items", "150", "--configs", dir, "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains(kd, errors);
        Assert.DoesNotContain("   at ", errors);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Compare_refuses_configs_that_miss_a_method()
    {
        var dir = TestData.TempDir();
        var configs = Path.Combine(dir, "configs");
        Directory.CreateDirectory(configs);
        var outDir = Path.Combine(dir, "compare");
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--methods", "scratch,kd", "--seeds", "1", "--teacher-dim", "8", "--epochs", "2",
            "--synthetic-users", "120", "--synthetic-items", "150", "--configs", configs, "--out", outDir }));
        Assert.False(Directory.Exists(Path.Combine(outDir, "runs")));
    }
}

public class TuneCliTests
{
    [Fact]
    public void Tune_says_what_it_wrote_and_report_only_refuses_a_folder_without_a_search()
    {
        var teacher = TuningTests.Teacher();
        var dir = TestData.TempDir();
        var tune = Path.Combine(dir, "tune");
        string[] args = { "tune", "--teacher", teacher, "--methods", "scratch", "--trials", "1", "--epochs", "2", "--out", tune };

        // The only trial is held by another process: this one chooses nothing and must not claim scratch.json.
        var lockPath = Path.Combine(tune, "scratch", "trial-0.lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var (code, output, _) = Serving.ServingCliTests.RunWithErrors(args);
            Assert.Equal(0, code);
            Assert.Contains("chose nothing here", output);
            Assert.DoesNotContain("METHOD.json for compare", output);
            Assert.DoesNotContain("scratch.json for compare", output);
            Assert.False(File.Exists(Path.Combine(tune, "scratch.json")));
        }
        var (again, written, _) = Serving.ServingCliTests.RunWithErrors(args);
        Assert.Equal(0, again);
        Assert.Contains("scratch.json for compare --configs", written);

        // --report-only on a folder that holds no search: an error naming it, and no empty report.
        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
        var (refused, _, errors) = Serving.ServingCliTests.RunWithErrors("tune", "--report-only", "--out", empty);
        Assert.Equal(2, refused);
        Assert.Contains($"--out {empty} holds no search", errors);
        Assert.Empty(Directory.GetFileSystemEntries(empty));
        Assert.Equal(0, CliApp.Run(new[] { "tune", "--report-only", "--out", tune }));
    }

    [Fact]
    public void Tune_then_compare_with_configs_runs_each_method_with_its_chosen_settings()
    {
        var dir = TestData.TempDir();
        string[] tiny = { "--synthetic-users", "120", "--synthetic-items", "150", "--epochs", "2", "--eval-every", "1", "--batch-size", "256" };
        var compare = Path.Combine(dir, "compare");
        // The teacher of the comparison, then tuning on its split, then the comparison with the choices.
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--methods", "scratch", "--seeds", "1", "--teacher-dim", "16", "--out", compare }.Concat(tiny).ToArray()));
        var tune = Path.Combine(dir, "tune");
        Assert.Equal(0, CliApp.Run(new[] { "tune", "--teacher", Path.Combine(compare, "teacher"), "--methods", "kd", "--trials", "3",
            "--epochs", "2", "--eval-every", "1", "--batch-size", "256", "--out", tune }));
        var chosen = Tuning.ReadTuned(tune, "kd")!;
        var configured = Path.Combine(dir, "configured");
        var configs = Path.Combine(dir, "configs");
        Directory.CreateDirectory(configs);
        File.Copy(Path.Combine(tune, "kd.json"), Path.Combine(configs, "kd.json"));
        File.Copy(Path.Combine(tune, "kd.json"), Path.Combine(configs, "scratch.json"));
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--methods", "kd,mkd", "--seeds", "1", "--teacher-dim", "16", "--configs", configs, "--out", configured }.Concat(tiny).ToArray()));
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--methods", "kd", "--seeds", "1", "--teacher-dim", "16", "--configs", tune, "--out", configured }.Concat(tiny).ToArray()));
        var run = Path.Combine(configured, "runs", "kd-seed1");
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(run, RunDirectory.MetricsFile)))!;
        Assert.Equal(chosen.Config.Parameters["lambda"], (double)metrics["distillation"]!["options"]!["kd"]!["lambda"]!);
        Assert.Equal(chosen.Config.Parameters["tau"], (double)metrics["distillation"]!["options"]!["kd"]!["tau"]!);
        Assert.Equal(chosen.Config.WeightDecay, RunDirectory.ReadRecord(run).Train.WeightDecay);

        // With given teachers and every method tuned, --wd would change nothing: refused, nothing written.
        var idle = Path.Combine(dir, "idle");
        Assert.Equal(2, CliApp.Run(new[] { "compare", "--teachers", Path.Combine(compare, "teacher"), "--methods", "kd", "--configs", tune,
            "--wd", "0.01", "--out", idle }));
        Assert.False(Directory.Exists(idle));
        // The same comparison without --wd runs.
        Assert.Equal(0, CliApp.Run(new[] { "compare", "--teachers", Path.Combine(compare, "teacher"), "--methods", "kd", "--configs", tune,
            "--out", idle, "--epochs", "2", "--eval-every", "1", "--batch-size", "256" }));
    }
}
