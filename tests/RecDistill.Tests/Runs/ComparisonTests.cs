using System.Text.Json.Nodes;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Tests.Runs;

public class ComparisonTests
{
    private static readonly DataOptions Tiny = TestData.TinySynthetic(4);
    private static readonly TrainOptions Short = TestData.ShortTraining(7);

    [Fact]
    public void Per_user_test_metrics_average_to_the_reported_ones()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        var run = Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 8), Short, new RunOutput(dir));
        Assert.Equal(run.Test.Users, run.Test.EvaluatedUsers.Count);
        foreach (var (key, mean) in run.Test.Metrics)
            Assert.Equal(mean, run.Test.PerUser[key].Sum() / run.Test.Users, 15);
        // Each user's value is that user's own: recomputed by scoring every item with the saved model.
        var split = Workflow.LoadData(Tiny);
        using (var model = ModelFile.Load(Path.Combine(dir, ModelFile.FileName), split, TorchSharp.torch.CPU))
        {
            var (uv, iv) = ModelExport.FinalVectors(model);
            for (int r = 0; r < run.Test.EvaluatedUsers.Count; r += 7)
            {
                int u = run.Test.EvaluatedUsers[r];
                var want = RecDistill.Tests.Evaluation.RankingMetricsTests.BruteForceUser(split, uv, iv, 8, [20], EvalSplit.Test, u);
                Assert.Equal(want["ndcg@20"], run.Test.PerUser["ndcg@20"][r], 6);
            }
        }
        var file = RunDirectory.ReadTestUsers(dir, "ndcg@20")!.Value;
        Assert.Equal(run.Test.EvaluatedUsers, file.Users);
        Assert.Equal(run.Test["ndcg@20"], file.Values.Average(), 6);
        // Users without test items are not listed.
        var data = Workflow.LoadData(Tiny);
        Assert.All(file.Users, u => Assert.NotEmpty(data.Test[u]));
    }

    [Fact]
    public void A_run_held_by_another_process_is_left_to_it_and_the_next_call_completes_the_plan()
    {
        var root = TestData.TempDir();
        var plan = new ComparisonPlan
        {
            OutDir = Path.Combine(root, "cmp"), Data = Tiny, Teacher = new ModelShape(Backbone.Bpr, 16), StudentDim = 4,
            Train = Short, Methods = new[] { "scratch", "kd" }, Seeds = 1,
        };
        var held = Comparison.RunDir(plan, "scratch", 1);
        Directory.CreateDirectory(Path.GetDirectoryName(held)!);
        using (new FileStream(held + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            Comparison.Run(plan);
            Assert.False(RunDirectory.IsFinished(held));
            Assert.True(RunDirectory.IsFinished(Comparison.RunDir(plan, "kd", 1)));
        }
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(Comparison.RunDir(plan, "kd", 1), RunDirectory.MetricsFile));
        var outcome = Comparison.Run(plan);
        Assert.Empty(outcome.Failures);
        Assert.True(RunDirectory.IsFinished(held));
        Assert.False(File.Exists(held + ".lock"));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(Comparison.RunDir(plan, "kd", 1), RunDirectory.MetricsFile)));
        Assert.Equal(3, Directory.GetFiles(plan.Records).Length); // teacher, scratch, kd

        // The same directory with other settings is refused before anything trains, naming the runs and what differs.
        var other = plan with { Train = Short with { LearningRate = Short.LearningRate * 2 }, Methods = new[] { "scratch", "kd", "sld" } };
        var error = Assert.Throws<UserErrorException>(() => Comparison.Run(other));
        Assert.Contains("kd seed 1", error.Message);
        Assert.Contains("train.learning_rate 0.01 there, 0.02 here", error.Message);
        Assert.Contains("teacher (train.learning_rate 0.01 there, 0.02 here)", error.Message); // OUT/teacher is checked too
        // A teacher of another dimension is not reused under this plan's name.
        var wider = Assert.Throws<UserErrorException>(() => Comparison.Check(plan with { Teacher = new ModelShape(Backbone.Bpr, 24) }));
        Assert.Contains("teacher (model.dim 16 there, 24 here)", wider.Message);
        Assert.False(Directory.Exists(Comparison.RunDir(other, "sld", 1)));
        TunedConfig Tuned(string method, Dictionary<string, double> parameters) =>
            new(method, new TrialConfig(method, Short.WeightDecay, parameters), 0, 0, 1, Short.Seed, "", "");
        var lambda = Assert.Throws<UserErrorException>(() => Comparison.Run(plan with
        {
            Configs = new Dictionary<string, TunedConfig> { ["scratch"] = Tuned("scratch", new()), ["kd"] = Tuned("kd", new() { ["lambda"] = 0.9 }) },
        }));
        Assert.Contains("options.kd.lambda 0.3 there, 0.9 here", lambda.Message);
        Assert.DoesNotContain("scratch seed 1", lambda.Message);
        Assert.Empty(Comparison.Run(plan).Failures); // the plan that made them still reuses them

        // Students of another dimension are not reused under this plan's title.
        var narrower = Assert.Throws<UserErrorException>(() => Comparison.Check(plan with { StudentDim = 2 }));
        Assert.Contains("kd seed 1 (dim 4 there, 2 here)", narrower.Message);
        // Nor are records standing alone in a records folder: the same check, from what the record holds.
        var shared = Path.Combine(root, "shared-records");
        Directory.CreateDirectory(shared);
        foreach (var f in Directory.GetFiles(plan.Records)) File.Copy(f, Path.Combine(shared, Path.GetFileName(f)));
        var elsewhere = plan with { OutDir = Path.Combine(root, "cmp2"), RecordsDir = shared, Train = Short with { Seed = Short.Seed + 5 } };
        var records = Assert.Throws<UserErrorException>(() => Comparison.Check(elsewhere));
        Assert.Contains($"kd seed 1 recorded in {Path.Combine(shared, "kd-seed1.json")} (", records.Message);
        Assert.Contains("train.seed 7 there, 12 here", records.Message);
        // A record of an earlier build (no settings) is still checked on its seed and dimension.
        var old = JsonNode.Parse(File.ReadAllText(Path.Combine(shared, "kd-seed1.json")))!.AsObject();
        old.Remove("settings");
        File.WriteAllText(Path.Combine(shared, "kd-seed1.json"), old.ToJsonString());
        var oldRecord = Assert.Throws<UserErrorException>(() => Comparison.Check(elsewhere with { StudentDim = 2 }));
        Assert.Contains("(dim 4 there, 2 here", oldRecord.Message);
    }

    /// <summary>A teacher trained for the test (d=8, 2 epochs) and a plan of scratch and kd from it.</summary>
    private static (string Teacher, ComparisonPlan Plan) PlanWithATeacher()
    {
        var root = TestData.TempDir();
        var teacher = Path.Combine(root, "teacher");
        Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 8), Short with { MaxEpochs = 2 }, new RunOutput(teacher));
        return (teacher, new ComparisonPlan
        {
            OutDir = Path.Combine(root, "cmp"), Data = Tiny, Teacher = new ModelShape(Backbone.Bpr, 8),
            Train = Short with { MaxEpochs = 2 }, Methods = ["scratch", "kd"], Teachers = [teacher],
        });
    }

    [Fact]
    public void A_plan_with_options_out_of_range_is_refused_before_its_directory_is_made()
    {
        // Found by the runs, they failed every run in turn (error.txt each, a report of failures) after OUT and
        // the teacher's record were written, or (negative seeds) threw Enumerable.Range's "count" out of range.
        var (teacher, given) = PlanWithATeacher();
        var trained = given with { Teachers = null };
        var tuned = new TunedConfig("kd", new TrialConfig("kd", -1, new Dictionary<string, double>()), 0, 0.1, 1, 1, teacher, "");
        foreach (var (plan, names) in new (ComparisonPlan, string)[]
        {
            (given with { Train = given.Train with { MaxEpochs = 0 } }, "TrainOptions.MaxEpochs"),
            (given with { StudentDim = 0 }, "ComparisonPlan.StudentDim"),
            (given with { Configs = new Dictionary<string, TunedConfig> { ["kd"] = tuned } }, "TrainOptions.WeightDecay"),
            (trained with { Seeds = 0 }, "ComparisonPlan.Seeds must be at least 1 (not 0)"),
            (trained with { Seeds = -1 }, "ComparisonPlan.Seeds must be at least 1 (not -1)"),
            (trained with { Teacher = new ModelShape(Backbone.Bpr, 0) }, "ModelShape.Dim"),
            (trained with { Data = Tiny with { TrainRatio = 0 } }, "train ratio"),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => Comparison.Run(plan));
            Assert.Contains(names, e.Message);
            Assert.False(Directory.Exists(plan.OutDir), names);
        }
        var threads = Assert.Throws<UserErrorException>(() => Comparison.Run(trained with { Compute = new ComputeOptions(Threads: 0) }));
        Assert.False(Directory.Exists(trained.OutDir));
    }

    [Fact]
    public void Method_names_are_matched_without_case_and_written_in_lower_case()
    {
        var plan = PlanWithATeacher().Plan with { Methods = ["Scratch", "KD"] };
        // The same method twice under two spellings would run it twice into one directory.
        Assert.Contains("'kd' is named more than once", Assert.Throws<ArgumentException>(() => Comparison.Run(plan with { Methods = ["kd", "KD"] })).Message);
        Assert.False(Directory.Exists(plan.OutDir));
        Comparison.Run(plan);
        Assert.Equal(["kd-seed1", "scratch-seed1"], Directory.GetDirectories(Path.Combine(plan.OutDir, "runs")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Teachers_of_several_kinds_or_a_student_as_teacher_are_refused()
    {
        var root = TestData.TempDir();
        string Teacher(string name, int dim)
        {
            var dir = Path.Combine(root, name);
            Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, dim), Short with { MaxEpochs = 2 }, new RunOutput(dir));
            return dir;
        }
        var (a, b, wide) = (Teacher("a", 8), Teacher("b", 8), Teacher("wide", 12));
        var plan = new ComparisonPlan
        {
            OutDir = Path.Combine(root, "cmp"), Data = Tiny, Teacher = new ModelShape(Backbone.Bpr, 8),
            Train = Short with { MaxEpochs = 2 }, Methods = new[] { "scratch" }, Teachers = new[] { a, b },
        };
        Comparison.Check(plan);
        var mixed = Assert.Throws<UserErrorException>(() => Comparison.Check(plan with { Teachers = new[] { a, wide } }));
        Assert.Contains($"{a}: bpr d=8", mixed.Message);
        Assert.Contains($"{wide}: bpr d=12", mixed.Message);
        var student = Path.Combine(root, "student");
        Workflow.Distill(a, "scratch", Short with { MaxEpochs = 2 }, output: new RunOutput(student));
        var notTeacher = Assert.Throws<UserErrorException>(() => Comparison.Check(plan with { Teachers = new[] { a, student } }));
        Assert.Contains($"teacher {student} is a distilled student (scratch of", notTeacher.Message);
        // A damaged teacher model is found before anything is written, not when its first run starts.
        var model = Path.Combine(b, ModelFile.FileName);
        File.WriteAllBytes(model, File.ReadAllBytes(model)[..100]);
        var damaged = Assert.Throws<DataFormatException>(() => Comparison.Run(plan));
        Assert.Contains("checksum mismatch", damaged.Message);
        Assert.False(Directory.Exists(plan.OutDir));
    }

    [Fact]
    public void Each_run_distils_from_its_own_teacher_and_the_report_tests_mkd_over_users()
    {
        var root = TestData.TempDir();
        var teachers = new[] { 1, 2 }.Select(s =>
        {
            var dir = Path.Combine(root, $"teacher-{s}");
            Workflow.Train(Tiny, new ModelShape(Backbone.Bpr, 16), Short with { Seed = s }, new RunOutput(dir));
            return dir;
        }).ToArray();
        var plan = new ComparisonPlan
        {
            OutDir = Path.Combine(root, "cmp"), Data = Tiny, Teacher = new ModelShape(Backbone.Bpr, 16), StudentDim = 4,
            Train = Short, Methods = new[] { "scratch", "cpd+sld", "mkd" }, Teachers = teachers,
        };
        var outcome = Comparison.Run(plan);
        Assert.Empty(outcome.Failures);
        var records = Directory.GetFiles(plan.Records).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { "cpd+sld-seed1.json", "cpd+sld-seed2.json", "mkd-seed1.json", "mkd-seed2.json",
            "scratch-seed1.json", "scratch-seed2.json", "teacher-seed1.json", "teacher-seed2.json" }, records);
        for (int k = 1; k <= 2; k++)
        {
            var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(Comparison.RunDir(plan, "mkd", k), RunDirectory.MetricsFile)))!;
            Assert.Equal(Path.GetFullPath(teachers[k - 1]), (string)metrics["distillation"]!["teacher"]!);
            Assert.Equal(Short.Seed + k - 1, (int)metrics["seed"]!);
        }

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(plan.OutDir, "results.json")))!;
        var rows = json["rows"]!.AsArray();
        Assert.Equal(2, (int)rows.Single(r => (string)r!["method"]! == "teacher")!["runs"]!);
        var paired = json["paired_tests"]!.AsArray();
        Assert.Equal("teacher", (string)paired[0]!["b"]!);
        // The teacher, the best other student, and the ablation present (MKD without NKD), each once.
        var against = paired.Select(p => (string)p!["b"]!).ToList();
        Assert.Equal(against.Distinct().Count(), against.Count);
        Assert.Contains("cpd+sld", against);
        Assert.InRange(against.Count, 2, 3);

        // The test is recomputed from the runs' own per-user files: each user's mean over a method's two runs.
        double[] Means(string method, Func<int, string> dir)
        {
            var runs = Enumerable.Range(1, 2).Select(k => RunDirectory.ReadTestUsers(dir(k), "ndcg@20")!.Value.Values).ToArray();
            return runs[0].Select((_, u) => runs.Sum(r => r[u]) / 2).ToArray();
        }
        var mkd = Means("mkd", k => Comparison.RunDir(plan, "mkd", k));
        var teacher = Means("teacher", k => teachers[k - 1]);
        var expected = WilcoxonSignedRank.Test(mkd, teacher);
        Assert.Equal(expected.P, (double)paired[0]!["p"]!, 12);
        Assert.Equal(expected.Wins, (int)paired[0]!["a_higher"]!);
        var withoutNkd = paired.Single(p => (string)p!["b"]! == "cpd+sld")!;
        Assert.Equal(WilcoxonSignedRank.Test(mkd, Means("cpd+sld", k => Comparison.RunDir(plan, "cpd+sld", k))).P, (double)withoutNkd["p"]!, 12);

        // Both methods with a CPD part report its inconsistency rate; the ablation ran without NKD.
        var inconsistency = json["cpd_inconsistency"]!.AsObject();
        Assert.Equal(new[] { "cpd+sld", "mkd" }, inconsistency.Select(kv => kv.Key));
        var ablation = JsonNode.Parse(File.ReadAllText(Path.Combine(Comparison.RunDir(plan, "cpd+sld", 1), RunDirectory.MetricsFile)))!;
        Assert.Equal("cpd+sld", (string)ablation["distillation"]!["method"]!);
        Assert.Contains("Paired tests over users", outcome.Markdown);
        Assert.Contains($"Holm's p is adjusted for the {paired.Count} tests shown", outcome.Markdown);
        Assert.Equal(HolmAdjustment.Adjust(paired.Select(p => (double)p!["p"]!).ToList()), paired.Select(p => (double)p!["p_holm"]!));
        // With one teacher per run, the spread of a student's runs includes the teachers' spread: the report says so.
        Assert.Contains("run k of a student is distilled from teacher run k, of 2", outcome.Markdown);
        Assert.Contains("- mkd: ", outcome.Markdown);
        Assert.EndsWith("(2 runs)", outcome.Markdown.Split('\n').Single(l => l.StartsWith("- cpd+sld: ", StringComparison.Ordinal)).TrimEnd());

        // Gradient shares: each record's equal the history's (one phase), the table averages a method's runs.
        var shares = json["gradient_shares"]!.AsObject();
        Assert.Equal(new[] { "cpd+sld", "mkd" }, shares.Select(kv => kv.Key)); // scratch has one term
        var mkdShares = shares["mkd"]!.AsObject().ToDictionary(kv => kv.Key, kv => (double)kv.Value!);
        Assert.Equal(new[] { "bpr", "cpd_features", "cpd_regulariser", "nkd", "sld" }, mkdShares.Keys.Order());
        Assert.Equal(1.0, mkdShares.Values.Sum(), 5);
        Assert.Equal(0.0, mkdShares["cpd_regulariser"]); // the regulariser reads the student detached
        var perRun = Enumerable.Range(1, 2).Select(k => LossTermSummary.Read(Comparison.RunDir(plan, "mkd", k), phases: 1).ByPhase[0]).ToArray();
        Assert.Equal(perRun.Average(r => r.Single(t => t.Term == "sld").GradientShare), mkdShares["sld"], 5);
        Assert.Contains("share of the gradient norm", outcome.Markdown);
    }

    [Fact]
    public void Mkd_is_tested_against_the_teacher_the_strongest_rival_the_best_baseline_its_parts_and_its_ablations()
    {
        // Per-user test NDCG@20 on 40 users; SLD has the highest mean of the other students, RD of the baselines.
        var rng = new Random(7);
        RunSummary Run(string method, int k, double shift) => new()
        {
            Method = method, SeedIndex = k, TestUsersHash = "u40",
            Test = new() { ["ndcg@20"] = 0.1 + shift },
            TestNdcg20ByUser = Enumerable.Range(0, 40).Select(_ => Math.Round(0.1 + shift + 0.05 * rng.NextDouble(), 3)).ToArray(),
        };
        var records = new List<RunSummary> { Run("teacher", 0, 0.02) };
        foreach (var (m, shift) in new[] { ("scratch", -0.05), ("kd", -0.02), ("rd", -0.015), ("nkd", -0.01), ("sld", 0.03), ("cpd+sld", 0.005), ("mkd", 0.01) })
            for (int k = 1; k <= 2; k++) records.Add(Run(m, k, shift));
        var rows = ComparisonReport.Summarise(records, new[] { "scratch", "kd", "rd", "nkd", "sld", "cpd+sld", "mkd" });

        var paired = ComparisonReport.PairedTests(records, rows);
        // Each once, in this order; CPD and the other ablations were not run: no test against them.
        Assert.Equal(new[] { "teacher", "sld", "rd", "nkd", "cpd+sld" }, paired.Select(p => p.B));

        // When the strongest rival is itself a baseline, it is tested once.
        var kdFirst = records.Select(r => r.Method == "kd" ? r with { Test = new() { ["ndcg@20"] = 0.2 } } : r).ToList();
        var once = ComparisonReport.PairedTests(kdFirst, ComparisonReport.Summarise(kdFirst, new[] { "scratch", "kd", "rd", "nkd", "sld", "cpd+sld", "mkd" }));
        Assert.Equal(new[] { "teacher", "kd", "nkd", "sld", "cpd+sld" }, once.Select(p => p.B));
        Assert.All(paired, p => Assert.Equal("mkd", p.A));

        // Each test is the signed-rank test on each user's mean over a method's runs.
        double[] Means(string method)
        {
            var runs = records.Where(r => r.Method == method).ToList();
            return Enumerable.Range(0, 40).Select(u => runs.Sum(r => r.TestNdcg20ByUser![u]) / runs.Count).ToArray();
        }
        var sld = paired.Single(p => p.B == "sld");
        Assert.Equal(WilcoxonSignedRank.Test(Means("mkd"), Means("sld")).P, sld.Test.P, 12);
        Assert.Equal((2, 2), (sld.RunsA, sld.RunsB));
    }

    [Fact]
    public void A_report_covers_the_teacher_and_the_methods_asked_for_only()
    {
        // A records folder with an ablation's runs beside the table's: the table's report must not change.
        RunSummary Run(string method, int k, double ndcg) => new()
        {
            Method = method, SeedIndex = k, TrainSeconds = 100, Valid = new() { ["ndcg@20"] = ndcg }, Test = new() { ["ndcg@20"] = ndcg },
        };
        var table = new List<RunSummary> { Run("teacher", 0, 0.02), Run("sld", 1, 0.018), Run("mkd", 1, 0.019) };
        var withOthers = table.Append(Run("nkd+sld", 1, 0.03)).ToList();
        string a = TestData.TempDir(), b = TestData.TempDir();
        var alone = ComparisonReport.Write(a, "t", table, new[] { "sld", "mkd" }, []);
        var mixed = ComparisonReport.Write(b, "t", withOthers, new[] { "sld", "mkd" }, []);
        Assert.Equal(alone, mixed);
        Assert.Equal(File.ReadAllText(Path.Combine(a, "results.json")), File.ReadAllText(Path.Combine(b, "results.json")));
        Assert.Equal(File.ReadAllText(Path.Combine(a, "results.csv")), File.ReadAllText(Path.Combine(b, "results.csv")));
        Assert.DoesNotContain("nkd+sld", mixed);
        // Every method with records: the usual ones in their order, then the others by name.
        Assert.Equal(new[] { "mkd", "sld", "nkd+sld" }, ComparisonReport.MethodsOf(withOthers, new[] { "kd", "mkd", "sld" }));
    }

    [Fact]
    public void A_paired_test_where_no_user_differs_is_written_as_no_test_and_the_report_is_whole()
    {
        // Two methods with the same per-user values (e.g. two identical runs): the signed-rank test has
        // nothing to rank and no z; results.json has no NaN in it (JSON cannot hold one).
        var perUser = Enumerable.Range(0, 12).Select(u => 0.01 * (u % 5)).ToArray();
        RunSummary Run(string method, int k, double[] users) => new()
        {
            Method = method, SeedIndex = k, TestUsersHash = "u12", TestNdcg20ByUser = users,
            Valid = new() { ["ndcg@20"] = 0.05 }, Test = new() { ["ndcg@20"] = users.Average() },
        };
        var records = new List<RunSummary>
        {
            Run("teacher", 0, perUser.Select(v => v + 0.01).ToArray()), Run("sld", 1, perUser), Run("mkd", 1, perUser),
        };
        var dir = TestData.TempDir();
        var markdown = ComparisonReport.Write(dir, "ties", records, new[] { "sld", "mkd" }, []);

        var line = markdown.Split('\n').Single(l => l.StartsWith("- mkd vs sld: ", StringComparison.Ordinal));
        Assert.Contains("equal for every user, so no test (p = 1)", line);
        Assert.DoesNotContain("NaN", line);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;
        var tie = json["paired_tests"]!.AsArray().Single(t => (string)t!["b"]! == "sld")!;
        Assert.Equal(0, (int)tie["differing"]!);
        Assert.Null(tie["z"]);
        Assert.Equal(1.0, (double)tie["p"]!);
        // The other test is a real one: the teacher is higher for the 12 users.
        var teacher = json["paired_tests"]!.AsArray().Single(t => (string)t!["b"]! == "teacher")!;
        Assert.Equal(12, (int)teacher["b_higher"]!);
        Assert.NotNull(teacher["z"]);
        // Metrics no run has (recall@10 here) are null, not NaN.
        Assert.Null(json["rows"]![0]!["test"]!["recall@10"]!["mean"]);
        Assert.True(File.Exists(Path.Combine(dir, "results.md")) && File.Exists(Path.Combine(dir, "results.csv")));
    }

    [Fact]
    public void Ablations_are_mkd_without_one_part_and_are_tuned_over_the_parts_they_keep()
    {
        Assert.Equal(new[] { "nkd", "sld" }, DistillationMethods.MkdParts("nkd+sld"));
        Assert.Null(DistillationMethods.MkdParts("kd"));
        Assert.True(DistillationMethods.IsKnown("CPD+SLD"));
        Assert.Equal(new[] { Tuning.WeightDecay, "lambda_cpd", "lambda_sld" }, Tuning.SpaceOf("cpd+sld").Select(d => d.Name));
        var tuned = new TrialConfig("mkd", 1e-6, new Dictionary<string, double> { ["lambda_nkd"] = 0.3, ["lambda_cpd"] = 0.2, ["lambda_sld"] = 0.7 });
        var options = Tuning.Apply(tuned with { Method = "nkd+cpd" }, Backbone.Bpr);
        Assert.Equal("nkd+cpd", options.Method);
        Assert.Equal((0.3, 0.2), (options.Nkd.Lambda, options.Cpd.Lambda));
    }
}
