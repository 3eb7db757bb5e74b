using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Security.Cryptography;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Training;

namespace RecDistill.Runs;

/// <summary>One finished run of a comparison: the small record kept (e.g. in the repository) to rebuild the tables.</summary>
public sealed record RunSummary
{
    /// <summary>The method's name, or <see cref="TeacherMethod"/>.</summary>
    public required string Method { get; init; }
    /// <summary>1-based seed index (seed = base seed + index - 1); 0 for the teacher.</summary>
    public int SeedIndex { get; init; }
    /// <summary>The training seed of the run.</summary>
    public int Seed { get; init; }
    /// <summary>Embedding dimension of the run's model.</summary>
    public int Dim { get; init; }
    /// <summary>Trainable parameters of the run's model.</summary>
    public long Parameters { get; init; }
    /// <summary>The epoch of the best validation NDCG@20 (the weights evaluated).</summary>
    public int BestEpoch { get; init; }
    /// <summary>Epochs trained (fewer than asked when early stopping ended the run).</summary>
    public int EpochsRun { get; init; }
    /// <summary>Training time in seconds.</summary>
    public double TrainSeconds { get; init; }
    /// <summary>Peak resident memory of the process over the run in MiB (since its last resume); null where not measured.</summary>
    public double? PeakMemoryMb { get; init; }
    /// <summary>Validation metrics of the best weights, by key (as "ndcg@20").</summary>
    public Dictionary<string, double> Valid { get; init; } = new();
    /// <summary>Test metrics of the best weights, by key (as "ndcg@20").</summary>
    public Dictionary<string, double> Test { get; init; } = new();
    /// <summary>(epoch, validation NDCG@20) at every validation.</summary>
    public List<double[]> ValidCurve { get; init; } = new();
    /// <summary>The command line that produced the run.</summary>
    public string Command { get; init; } = "";
    /// <summary>The last epoch's diagnostics of the method (e.g. cpd_inconsistency).</summary>
    public Dictionary<string, double> Diagnostics { get; init; } = new();
    /// <summary>Test NDCG@20 of each evaluated user (dense order), for paired tests; null when the run kept none.</summary>
    public double[]? TestNdcg20ByUser { get; init; }
    /// <summary>Fingerprint of the evaluated users' dense ids: paired tests only pair runs with the same one.</summary>
    public string? TestUsersHash { get; init; }
    /// <summary>
    /// Each loss term's share of the gradient norm on the shared student vectors over the whole run
    /// (<see cref="LossTermSummary"/> with one phase); null when history.csv has no term columns.
    /// </summary>
    public Dictionary<string, double>? GradientShares { get; init; }

    /// <summary>
    /// What a distillation run was made with (student dimension, training options, teacher, method options), so that
    /// a comparison can tell whether a record belongs to its plan; null for a teacher and in records of earlier builds.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject? Settings { get; init; }

    /// <summary>The method name of a teacher's record.</summary>
    public const string TeacherMethod = "teacher";

    /// <summary>Reads a run directory written by train/distill (metrics.json and history.csv).</summary>
    public static RunSummary FromRunDirectory(string dir, string method, int seedIndex)
    {
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)))!;
        Dictionary<string, double> Metrics(JsonNode? o) => o!.AsObject()
            .Where(kv => kv.Key.Contains('@')).ToDictionary(kv => kv.Key, kv => (double)kv.Value!);
        var curve = new List<double[]>();
        var history = Path.Combine(dir, RunDirectory.HistoryFile);
        if (File.Exists(history))
            foreach (var line in File.ReadLines(history).Skip(1))
            {
                var f = line.Split(',');
                if (f.Length > 3 && f[3].Length > 0)
                    curve.Add(new[] { double.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture) });
            }
        var diagnostics = new Dictionary<string, double>();
        if (m["distillation"]?["last_epoch_diagnostics"] is JsonObject diag)
            foreach (var (k, v) in diag) if (v is not null) diagnostics[k] = (double)v;
        var perUser = RunDirectory.ReadTestUsers(dir, "ndcg@20");
        var shares = LossTermSummary.WholeRun(dir)?.ToDictionary(t => t.Term, t => Math.Round(t.GradientShare, 6));
        return new RunSummary
        {
            GradientShares = shares,
            Diagnostics = diagnostics,
            TestNdcg20ByUser = perUser?.Values,
            TestUsersHash = perUser is { } p ? UsersHash(p.Users) : null,
            Method = method, SeedIndex = seedIndex, Seed = (int?)m["seed"] ?? 0,
            Dim = (int)m["model"]!["dim"]!, Parameters = (long)m["model"]!["parameters"]!,
            BestEpoch = (int?)m["best_epoch"] ?? 0, EpochsRun = (int?)m["epochs_run"] ?? 0,
            TrainSeconds = (double?)m["train_seconds"] ?? 0, PeakMemoryMb = (double?)m["peak_memory_mb"],
            Valid = Metrics(m["valid"]), Test = Metrics(m["test"]), ValidCurve = curve,
            Command = (string?)m["command"] ?? "",
            Settings = method == TeacherMethod || m["distillation"] is null ? null : Comparison.RecordedSettings(dir),
        };
    }

    /// <summary>teacher.json for a comparison's one teacher, teacher-seedK.json when each seed has its own, METHOD-seedK.json.</summary>
    public string FileName => Method == TeacherMethod && SeedIndex == 0 ? "teacher.json" : $"{Method}-seed{SeedIndex}.json";

    /// <summary>A short hex fingerprint of a list of dense user ids.</summary>
    public static string UsersHash(IReadOnlyList<int> users)
    {
        var bytes = new byte[users.Count * 4];
        for (int i = 0; i < users.Count; i++) System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), users[i]);
        return $"{users.Count}:{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}";
    }
}

/// <summary>
/// The paper-style comparison built from run records: results.md (mean ± std per metric, best
/// student in bold, MKD against the best baseline, model sizes), results.csv, results.json and
/// PNG charts. Everything here is computed from the records, so the tables can be rebuilt from
/// the records kept in the repository without training anything.
/// </summary>
public static class ComparisonReport
{
    /// <summary>The test metrics the tables show, mean and standard deviation over runs.</summary>
    public static readonly string[] Metrics = { "recall@10", "recall@20", "ndcg@10", "ndcg@20" };
    private static readonly string[] Baselines = { "kd", "rd", "cd", "de", "rrd", "htd" };

    /// <summary>Every run record (*.json) in a directory, in file name order; none when it does not exist.</summary>
    public static List<RunSummary> ReadRecords(string dir)
    {
        if (!Directory.Exists(dir)) return new();
        var list = new List<RunSummary>();
        foreach (var f in Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal))
        {
            try { list.Add(JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(f), JsonOptions.Default)!); }
            catch (JsonException e) { throw new UserErrorException($"{f}: not a run record ({e.Message})"); }
        }
        return list;
    }

    /// <summary>Writes a run record atomically as <see cref="RunSummary.FileName"/> in <paramref name="dir"/>.</summary>
    public static void WriteRecord(string dir, RunSummary r) =>
        AtomicFile.WriteText(Path.Combine(dir, r.FileName), JsonSerializer.Serialize(r, JsonOptions.Default));

    /// <summary>One method's line in the results table, over its runs.</summary>
    /// <param name="Method">The method's name (or the teacher).</param>
    /// <param name="Runs">Runs summarised.</param>
    /// <param name="Parameters">Trainable parameters of the first run's model.</param>
    /// <param name="Test">Mean and sample standard deviation of each of <see cref="Metrics"/> on test.</param>
    /// <param name="ValidNdcg20">Mean validation NDCG@20.</param>
    /// <param name="MeanSeconds">Mean training time in seconds.</param>
    /// <param name="PeakMemoryMb">The largest peak resident memory of the method's runs in MiB; null when none was measured.</param>
    /// <param name="MeanBestEpoch">Mean best-validation epoch over the runs.</param>
    /// <param name="MeanEpochsRun">Mean number of epochs trained over the runs.</param>
    public sealed record Row(string Method, int Runs, long Parameters, Dictionary<string, (double Mean, double Std)> Test,
        double ValidNdcg20, double MeanSeconds, double? PeakMemoryMb = null, double MeanBestEpoch = double.NaN, double MeanEpochsRun = double.NaN);

    /// <summary>One row per method: the teacher first, then the methods in <paramref name="order"/> (unlisted ones last).</summary>
    public static List<Row> Summarise(IEnumerable<RunSummary> records, IReadOnlyList<string> order)
    {
        var rows = new List<Row>();
        foreach (var g in Shown(records, order).GroupBy(r => r.Method).OrderBy(g => g.Key == RunSummary.TeacherMethod ? -1 : IndexOf(order, g.Key)))
        {
            var runs = g.ToList();
            var stats = Metrics.ToDictionary(k => k, k => MeanStd(runs.Select(r => r.Test.GetValueOrDefault(k, double.NaN))));
            rows.Add(new Row(g.Key, runs.Count, runs[0].Parameters, stats,
                runs.Average(r => r.Valid.GetValueOrDefault("ndcg@20", double.NaN)), runs.Average(r => r.TrainSeconds),
                runs.Max(r => r.PeakMemoryMb), runs.Average(r => (double)r.BestEpoch), runs.Average(r => (double)r.EpochsRun)));
        }
        return rows;
    }

    private static int IndexOf(IReadOnlyList<string> order, string m) { int i = order.ToList().IndexOf(m); return i < 0 ? int.MaxValue : i; }

    /// <summary>The records a report of <paramref name="methods"/> covers: the teacher's and those methods' (a records folder may hold others).</summary>
    public static IEnumerable<RunSummary> Shown(IEnumerable<RunSummary> records, IReadOnlyList<string> methods) =>
        records.Where(r => r.Method == RunSummary.TeacherMethod || methods.Contains(r.Method));

    /// <summary>Every student method with records: those of <paramref name="usual"/> in its order, then the others by name.</summary>
    public static string[] MethodsOf(IEnumerable<RunSummary> records, IReadOnlyList<string> usual)
    {
        var present = records.Select(r => r.Method).Where(m => m != RunSummary.TeacherMethod).Distinct().ToList();
        return usual.Where(present.Contains).Concat(present.Where(m => !usual.Contains(m)).Order(StringComparer.Ordinal)).ToArray();
    }

    private static (double, double) MeanStd(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        double mean = a.Average();
        double std = a.Length > 1 ? Math.Sqrt(a.Sum(x => (x - mean) * (x - mean)) / (a.Length - 1)) : 0;
        return (mean, std);
    }

    /// <summary>Draws a comparison's charts into a directory (the CLI's are PNG files).</summary>
    public delegate void ChartWriter(string outDir, string title, IReadOnlyList<Row> rows, IReadOnlyList<RunSummary> records, IReadOnlyList<string> order);

    /// <summary>A paired test over users between two methods' per-user test NDCG@20 (each user's mean over the method's runs).</summary>
    /// <param name="A">The method tested (MKD).</param>
    /// <param name="B">The method it is tested against.</param>
    /// <param name="RunsA">Runs of <paramref name="A"/> averaged per user.</param>
    /// <param name="RunsB">Runs of <paramref name="B"/> averaged per user.</param>
    /// <param name="Test">The signed-rank test of A's per-user means against B's.</param>
    /// <param name="PHolm">The test's p-value adjusted by Holm's method over all the tests of the report.</param>
    public sealed record PairedRow(string A, string B, int RunsA, int RunsB, PairedTest Test, double PHolm);

    /// <summary>
    /// MKD against the teacher, against the best other student (by mean test NDCG@20: the strongest
    /// rival, not a favourable one), against the best baseline (KD, RD, CD, DE, RRD, HTD: the report's
    /// "MKD against the best baseline" margins), against each of its single parts present (NKD, CPD,
    /// SLD: does the sum beat its parts?) and against each ablation present (MKD without one part), when
    /// the runs kept per-user metrics on the same users; each user's value is the mean over a method's runs.
    /// </summary>
    public static List<PairedRow> PairedTests(IReadOnlyList<RunSummary> records, IReadOnlyList<Row> rows)
    {
        var mkd = rows.FirstOrDefault(r => r.Method == "mkd");
        if (mkd is null) return [];
        var others = new List<string> { RunSummary.TeacherMethod };
        var bestOther = rows.Where(r => r.Method is not ("mkd" or RunSummary.TeacherMethod))
            .MaxBy(r => r.Test["ndcg@20"].Mean);
        if (bestOther is not null) others.Add(bestOther.Method);
        var bestBaseline = rows.Where(r => Baselines.Contains(r.Method)).MaxBy(r => r.Test["ndcg@20"].Mean);
        if (bestBaseline is not null && !others.Contains(bestBaseline.Method)) others.Add(bestBaseline.Method);
        // MKD against each part alone, and against MKD without each part (one test per part left out).
        others.AddRange(DistillationMethods.MkdParts("mkd")!.Concat(DistillationMethods.Ablations)
            .Where(m => rows.Any(r => r.Method == m) && !others.Contains(m)));
        var a = UserMeans(records.Where(r => r.Method == "mkd").ToList());
        var tests = new List<(string Other, int RunsB, PairedTest Test)>();
        foreach (var other in others)
        {
            var b = UserMeans(records.Where(r => r.Method == other).ToList());
            if (a is null || b is null || a.Value.Hash != b.Value.Hash) continue;
            tests.Add((other, b.Value.Runs, WilcoxonSignedRank.Test(a.Value.Means, b.Value.Means)));
        }
        // Several tests are read together: each also gets its p adjusted for all of them.
        var holm = HolmAdjustment.Adjust(tests.Select(t => t.Test.P).ToList());
        return tests.Select((t, i) => new PairedRow("mkd", t.Other, a!.Value.Runs, t.RunsB, t.Test, holm[i])).ToList();
    }

    /// <summary>A number for results.json, or null where it is not finite (JSON has no NaN): no runs with that metric, no test statistic.</summary>
    private static JsonNode? Finite(double value, int digits = -1) =>
        !double.IsFinite(value) ? null : JsonValue.Create(digits < 0 ? value : Math.Round(value, digits));

    /// <summary>Per-user mean over runs, when every run kept per-user values on the same users.</summary>
    private static (double[] Means, string Hash, int Runs)? UserMeans(List<RunSummary> runs)
    {
        if (runs.Count == 0 || runs.Any(r => r.TestNdcg20ByUser is null) || runs.Select(r => r.TestUsersHash).Distinct().Count() != 1)
            return null;
        var means = new double[runs[0].TestNdcg20ByUser!.Length];
        foreach (var r in runs) for (int u = 0; u < means.Length; u++) means[u] += r.TestNdcg20ByUser![u] / runs.Count;
        return (means, runs[0].TestUsersHash!, runs.Count);
    }

    /// <summary>
    /// Writes results.md/.csv/.json and the charts (when <paramref name="charts"/> is given) into <paramref name="outDir"/>
    /// for the teacher and the methods of <paramref name="order"/>, in that order (other methods' records are left
    /// out); returns the markdown.
    /// </summary>
    public static string Write(string outDir, string title, IReadOnlyList<RunSummary> records, IReadOnlyList<string> order,
        IReadOnlyList<string> failures, ChartWriter? charts = null)
    {
        // The report covers the teacher and the methods asked for; a records folder may hold other methods' runs.
        records = Shown(records, order).ToList();
        var rows = Summarise(records, order);
        var students = rows.Where(r => r.Method != RunSummary.TeacherMethod).ToList();
        var teacher = rows.FirstOrDefault(r => r.Method == RunSummary.TeacherMethod);
        var best = Metrics.ToDictionary(k => k, k => students.Count == 0 ? double.NaN : students.Max(r => r.Test[k].Mean));
        string Cell(Row r, string k)
        {
            var (mean, std) = r.Test[k];
            var s = r.Runs > 1 ? $"{mean:F4} ± {std:F4}" : $"{mean:F4}";
            return r.Method != RunSummary.TeacherMethod && mean == best[k] ? $"**{s}**" : s;
        }

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# {title}").AppendLine();
        // With one teacher per run (compare --teachers), a student's spread includes the teachers' spread.
        string over = teacher is { Runs: > 1 } ? $"over a method's runs (run k of a student is distilled from teacher run k, of {teacher.Runs})" : "over a method's runs (seeds)";
        md.AppendLine(CultureInfo.InvariantCulture, $"Test metrics at the best-validation epoch, mean ± standard deviation {over}; the best student per column in bold.").AppendLine();
        bool memory = rows.Any(r => r.PeakMemoryMb is not null);
        md.AppendLine("| method | runs | parameters | size vs teacher | " + string.Join(" | ", Metrics.Select(k => "test " + k)) +
            " | valid ndcg@20 | epochs best / run (mean) | train s (mean) |" + (memory ? " peak MiB (max) |" : ""));
        md.AppendLine("|---|---|---|---|" + string.Concat(Metrics.Select(_ => "---|")) + "---|---|---|" + (memory ? "---|" : ""));
        foreach (var r in rows)
        {
            string size = teacher is null ? "" : (r.Parameters / (double)teacher.Parameters).ToString("P1", CultureInfo.InvariantCulture);
            string peak = !memory ? "" : r.PeakMemoryMb is { } mb ? FormattableString.Invariant($" {mb:F0} |") : "  |";
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Method} | {r.Runs} | {r.Parameters:N0} | {size} | {string.Join(" | ", Metrics.Select(k => Cell(r, k)))} | {r.ValidNdcg20:F4} | {r.MeanBestEpoch:F0} / {r.MeanEpochsRun:F0} | {r.MeanSeconds:F0} |{peak}");
        }
        if (memory)
            md.AppendLine().AppendLine("Peak MiB: the largest peak resident memory of the process over one of the method's runs (Linux; since its last resume; the comparison's teacher stays loaded in it).");
        md.AppendLine().AppendLine(CultureInfo.InvariantCulture,
            $"Training time of the {Count(records.Count, "run")} above: {records.Sum(r => r.TrainSeconds) / 3600:F2} h (the sum of their train seconds).");
        md.AppendLine();
        var mkd = students.FirstOrDefault(r => r.Method == "mkd");
        var baselineRows = students.Where(r => Baselines.Contains(r.Method)).ToList();
        if (mkd is not null && baselineRows.Count > 0)
        {
            // Only the baselines that were run (a comparison may leave some out).
            md.AppendLine(CultureInfo.InvariantCulture,
                $"MKD against the best baseline among those run ({string.Join(", ", baselineRows.Select(r => r.Method.ToUpperInvariant()))}) per metric:").AppendLine();
            foreach (var k in Metrics)
            {
                var b = baselineRows.MaxBy(r => r.Test[k].Mean)!;
                double gain = (mkd.Test[k].Mean / b.Test[k].Mean - 1) * 100;
                md.AppendLine(CultureInfo.InvariantCulture, $"- {k}: MKD {mkd.Test[k].Mean:F4} vs {b.Method} {b.Test[k].Mean:F4} ({gain:+0.0;-0.0}%)");
            }
            md.AppendLine();
        }
        if (teacher is not null && mkd is not null)
            md.AppendLine(CultureInfo.InvariantCulture,
                $"MKD's test NDCG@20 is {mkd.Test["ndcg@20"].Mean / teacher.Test["ndcg@20"].Mean * 100:F1}% of the teacher's ({mkd.Test["ndcg@20"].Mean:F4} vs {teacher.Test["ndcg@20"].Mean:F4}; the teacher is {Count(teacher.Runs, "run")}).").AppendLine();
        var paired = PairedTests(records, rows);
        if (paired.Count > 0)
        {
            md.AppendLine("Paired tests over users (Wilcoxon signed-rank on per-user test NDCG@20, each user's mean over a method's runs; " +
                          "pairs with equal values are left out" +
                          (paired.Count > 1 ? $"; p is each test's own, Holm's p is adjusted for the {paired.Count} tests shown" : "") + "):").AppendLine();
            foreach (var p in paired)
            {
                var t = p.Test;
                if (t.NonZero == 0)
                {
                    // Nothing to rank: the test has no statistic, and says so rather than printing z = NaN.
                    md.AppendLine(CultureInfo.InvariantCulture,
                        $"- {p.A} vs {p.B}: {t.MeanA:F4} vs {t.MeanB:F4} over {t.Pairs:N0} users; equal for every user, so no test (p = 1)");
                    continue;
                }
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"- {p.A} vs {p.B}: {t.MeanA:F4} vs {t.MeanB:F4} over {t.Pairs:N0} users; {p.A} higher for {t.Wins:N0}, lower for {t.Losses:N0}; " +
                    $"z = {t.Z:F2}, p = {FormatP(t.P)}{(t.Exact ? " (exact)" : "")}{(paired.Count > 1 ? $", Holm's p = {FormatP(p.PHolm)}" : "")}");
            }
            md.AppendLine();
        }
        var inconsistency = InconsistencyRates(records, order);
        if (inconsistency.Count > 0)
        {
            md.AppendLine("CPD's inconsistency rate at the last epoch (share of sampled pairs whose order the selected expert's projection reverses):").AppendLine();
            foreach (var (method, (mean, std, runs)) in inconsistency)
                md.AppendLine(CultureInfo.InvariantCulture, $"- {method}: {mean:F4}{(runs > 1 ? $" ± {std:F4}" : "")} ({Count(runs, "run")})");
            md.AppendLine();
        }
        var shareTable = GradientShareTable(records, order);
        if (shareTable.Count > 0)
        {
            var terms = shareTable.SelectMany(kv => kv.Value.Keys).Distinct().ToList();
            md.AppendLine("Each loss term's share of the gradient norm on the shared student vectors (mean over a run's epochs, then over the method's runs; `recdistill terms` gives it by phase):").AppendLine();
            md.Append("| method |").AppendJoin("", terms.Select(t => $" {t} |")).AppendLine();
            md.Append("|---|").AppendJoin("", terms.Select(_ => "---:|")).AppendLine();
            foreach (var (method, shares) in shareTable)
                md.Append(CultureInfo.InvariantCulture, $"| {method} |")
                  .AppendJoin("", terms.Select(t => shares.TryGetValue(t, out var v) ? string.Create(CultureInfo.InvariantCulture, $" {100 * v:F1}% |") : " |"))
                  .AppendLine();
            md.AppendLine();
        }
        if (failures.Count > 0)
        {
            md.AppendLine("Runs that failed (the others are complete):").AppendLine();
            foreach (var f in failures) md.AppendLine("- " + f);
            md.AppendLine();
        }
        md.AppendLine("Charts: `ndcg20.png`, `recall20.png` (bars: mean over runs, whiskers: ± std, dashed line: teacher), `valid-ndcg20.png` (validation NDCG@20 per epoch, first run of each method).");

        var csv = new StringBuilder("method,seed_index,seed,dim,parameters,best_epoch,epochs_run,train_seconds,peak_memory_mb,valid_ndcg@20," + string.Join(",", Metrics.Select(k => "test_" + k)) + "\n");
        foreach (var r in records.OrderBy(r => r.Method == RunSummary.TeacherMethod ? -1 : IndexOf(order, r.Method)).ThenBy(r => r.SeedIndex))
            csv.Append(CultureInfo.InvariantCulture,
                $"{r.Method},{r.SeedIndex},{r.Seed},{r.Dim},{r.Parameters},{r.BestEpoch},{r.EpochsRun},{r.TrainSeconds:F1},{r.PeakMemoryMb:F1},{r.Valid.GetValueOrDefault("ndcg@20"):F6},")
               .AppendJoin(',', Metrics.Select(k => r.Test.GetValueOrDefault(k).ToString("F6", CultureInfo.InvariantCulture))).Append('\n');
        var json = new JsonObject
        {
            ["title"] = title,
            ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
            {
                ["method"] = r.Method, ["runs"] = r.Runs, ["parameters"] = r.Parameters,
                ["valid_ndcg@20"] = Finite(r.ValidNdcg20, 6), ["best_epoch_mean"] = Finite(r.MeanBestEpoch, 1),
                ["epochs_run_mean"] = Finite(r.MeanEpochsRun, 1), ["train_seconds_mean"] = Finite(r.MeanSeconds, 1),
                ["peak_memory_mb"] = r.PeakMemoryMb is { } mb ? Finite(mb, 1) : null,
                ["test"] = new JsonObject(Metrics.Select(k => KeyValuePair.Create(k, (JsonNode?)new JsonObject
                    { ["mean"] = Finite(r.Test[k].Mean, 6), ["std"] = Finite(r.Test[k].Std, 6) }))),
            }).ToArray()),
            ["paired_tests"] = new JsonArray(paired.Select(p => (JsonNode)new JsonObject
            {
                ["a"] = p.A, ["b"] = p.B, ["metric"] = "ndcg@20", ["runs_a"] = p.RunsA, ["runs_b"] = p.RunsB,
                ["users"] = p.Test.Pairs, ["differing"] = p.Test.NonZero, ["a_higher"] = p.Test.Wins, ["b_higher"] = p.Test.Losses,
                ["mean_a"] = Finite(p.Test.MeanA, 6), ["mean_b"] = Finite(p.Test.MeanB, 6),
                ["z"] = Finite(p.Test.Z, 4), ["p"] = Finite(p.Test.P), ["p_holm"] = Finite(p.PHolm), ["exact"] = p.Test.Exact,
            }).ToArray()),
            ["cpd_inconsistency"] = new JsonObject(inconsistency.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject
                { ["mean"] = Finite(kv.Value.Mean, 6), ["std"] = Finite(kv.Value.Std, 6), ["runs"] = kv.Value.Runs }))),
            ["gradient_shares"] = new JsonObject(shareTable.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject(
                kv.Value.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)Finite(t.Value, 6))))))),
            ["failures"] = new JsonArray(failures.Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
        };
        // Every text is built before the first is written, so a failure leaves the previous report whole.
        string jsonText = json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteText(Path.Combine(outDir, "results.md"), md.ToString());
        AtomicFile.WriteText(Path.Combine(outDir, "results.csv"), csv.ToString());
        AtomicFile.WriteText(Path.Combine(outDir, "results.json"), jsonText);
        charts?.Invoke(outDir, title, rows, records, order);
        return md.ToString();
    }

    /// <summary>"one run", "3 runs".</summary>
    internal static string Count(int n, string noun) => n == 1 ? $"one {noun}" : string.Create(CultureInfo.InvariantCulture, $"{n:N0} {noun}s");

    private static string FormatP(double p) => p < 1e-4 ? p.ToString("0.0E+0", CultureInfo.InvariantCulture) : p.ToString("0.0000", CultureInfo.InvariantCulture);

    /// <summary>
    /// Per method with more than one loss term, each term's gradient share averaged over the runs
    /// that recorded shares (a method whose runs recorded none is left out).
    /// </summary>
    private static List<KeyValuePair<string, Dictionary<string, double>>> GradientShareTable(IReadOnlyList<RunSummary> records, IReadOnlyList<string> order) =>
        records.Where(r => r.Method != RunSummary.TeacherMethod && r.GradientShares is { Count: > 1 })
            .GroupBy(r => r.Method).OrderBy(g => IndexOf(order, g.Key))
            .Select(g => KeyValuePair.Create(g.Key, g.SelectMany(r => r.GradientShares!.Keys).Distinct()
                .ToDictionary(t => t, t => g.Average(r => r.GradientShares!.GetValueOrDefault(t)))))
            .ToList();

    /// <summary>Mean, std and run count of the last-epoch inconsistency rate of every method with a CPD part.</summary>
    private static List<KeyValuePair<string, (double Mean, double Std, int Runs)>> InconsistencyRates(IReadOnlyList<RunSummary> records, IReadOnlyList<string> order) =>
        records.Where(r => r.Diagnostics.TryGetValue("cpd_inconsistency", out var v) && double.IsFinite(v))
            .GroupBy(r => r.Method).OrderBy(g => IndexOf(order, g.Key))
            .Select(g =>
            {
                var (mean, std) = MeanStd(g.Select(r => r.Diagnostics["cpd_inconsistency"]));
                return KeyValuePair.Create(g.Key, (mean, std, g.Count()));
            }).ToList();
}
