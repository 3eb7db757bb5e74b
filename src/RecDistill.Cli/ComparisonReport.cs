using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Cli;

/// <summary>One finished run of a comparison: the small record kept (e.g. in the repository) to rebuild the tables.</summary>
public sealed record RunSummary
{
    public required string Method { get; init; }
    /// <summary>1-based seed index (seed = base seed + index - 1); 0 for the teacher.</summary>
    public int SeedIndex { get; init; }
    public int Seed { get; init; }
    public int Dim { get; init; }
    public long Parameters { get; init; }
    public int BestEpoch { get; init; }
    public int EpochsRun { get; init; }
    public double TrainSeconds { get; init; }
    public Dictionary<string, double> Valid { get; init; } = new();
    public Dictionary<string, double> Test { get; init; } = new();
    /// <summary>(epoch, validation NDCG@20) at every validation.</summary>
    public List<double[]> ValidCurve { get; init; } = new();
    public string Command { get; init; } = "";

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
        return new RunSummary
        {
            Method = method, SeedIndex = seedIndex, Seed = (int?)m["seed"] ?? 0,
            Dim = (int)m["model"]!["dim"]!, Parameters = (long)m["model"]!["parameters"]!,
            BestEpoch = (int?)m["best_epoch"] ?? 0, EpochsRun = (int?)m["epochs_run"] ?? 0,
            TrainSeconds = (double?)m["train_seconds"] ?? 0,
            Valid = Metrics(m["valid"]), Test = Metrics(m["test"]), ValidCurve = curve,
            Command = (string?)m["command"] ?? "",
        };
    }

    public string FileName => Method == TeacherMethod ? "teacher.json" : $"{Method}-seed{SeedIndex}.json";
}

/// <summary>
/// The paper-style comparison built from run records: results.md (mean ± std per metric, best
/// student in bold, MKD against the best baseline, model sizes), results.csv, results.json and
/// PNG charts. Everything here is computed from the records, so the tables can be rebuilt from
/// the records kept in the repository without training anything.
/// </summary>
public static class ComparisonReport
{
    public static readonly string[] Metrics = { "recall@10", "recall@20", "ndcg@10", "ndcg@20" };
    private static readonly string[] Baselines = { "kd", "rd", "cd", "de", "rrd", "htd" };

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

    public static void WriteRecord(string dir, RunSummary r) =>
        AtomicFile.WriteText(Path.Combine(dir, r.FileName), JsonSerializer.Serialize(r, JsonOptions.Default));

    public sealed record Row(string Method, int Runs, long Parameters, Dictionary<string, (double Mean, double Std)> Test,
        double ValidNdcg20, double MeanSeconds);

    public static List<Row> Summarise(IEnumerable<RunSummary> records, IReadOnlyList<string> order)
    {
        var rows = new List<Row>();
        foreach (var g in records.GroupBy(r => r.Method).OrderBy(g => g.Key == RunSummary.TeacherMethod ? -1 : IndexOf(order, g.Key)))
        {
            var runs = g.ToList();
            var stats = Metrics.ToDictionary(k => k, k => MeanStd(runs.Select(r => r.Test.GetValueOrDefault(k, double.NaN))));
            rows.Add(new Row(g.Key, runs.Count, runs[0].Parameters, stats,
                runs.Average(r => r.Valid.GetValueOrDefault("ndcg@20", double.NaN)), runs.Average(r => r.TrainSeconds)));
        }
        return rows;
    }

    private static int IndexOf(IReadOnlyList<string> order, string m) { int i = order.ToList().IndexOf(m); return i < 0 ? int.MaxValue : i; }

    private static (double, double) MeanStd(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        double mean = a.Average();
        double std = a.Length > 1 ? Math.Sqrt(a.Sum(x => (x - mean) * (x - mean)) / (a.Length - 1)) : 0;
        return (mean, std);
    }

    /// <summary>Writes results.md/.csv/.json and the charts into <paramref name="outDir"/>; returns the markdown.</summary>
    public static string Write(string outDir, string title, IReadOnlyList<RunSummary> records, IReadOnlyList<string> order,
        IReadOnlyList<string> failures)
    {
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
        md.AppendLine("Test metrics at the best-validation epoch, mean ± standard deviation over seeds; the best student per column in bold.").AppendLine();
        md.AppendLine("| method | runs | parameters | size vs teacher | " + string.Join(" | ", Metrics.Select(k => "test " + k)) + " | valid ndcg@20 | train s (mean) |");
        md.AppendLine("|---|---|---|---|" + string.Concat(Metrics.Select(_ => "---|")) + "---|---|");
        foreach (var r in rows)
        {
            string size = teacher is null ? "" : (r.Parameters / (double)teacher.Parameters).ToString("P1", CultureInfo.InvariantCulture);
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Method} | {r.Runs} | {r.Parameters:N0} | {size} | {string.Join(" | ", Metrics.Select(k => Cell(r, k)))} | {r.ValidNdcg20:F4} | {r.MeanSeconds:F0} |");
        }
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
                $"MKD's test NDCG@20 is {mkd.Test["ndcg@20"].Mean / teacher.Test["ndcg@20"].Mean * 100:F1}% of the teacher's ({mkd.Test["ndcg@20"].Mean:F4} vs {teacher.Test["ndcg@20"].Mean:F4}; the teacher is {(teacher.Runs == 1 ? "one run" : $"{teacher.Runs} runs")}).").AppendLine();
        if (failures.Count > 0)
        {
            md.AppendLine("Runs that failed (the others are complete):").AppendLine();
            foreach (var f in failures) md.AppendLine("- " + f);
            md.AppendLine();
        }
        md.AppendLine("Charts: `ndcg20.png`, `recall20.png` (bars: mean over seeds, whiskers: ± std, dashed line: teacher), `valid-ndcg20.png` (validation NDCG@20 per epoch, first seed of each method).");

        Directory.CreateDirectory(outDir);
        AtomicFile.WriteText(Path.Combine(outDir, "results.md"), md.ToString());
        var csv = new StringBuilder("method,seed_index,seed,dim,parameters,best_epoch,epochs_run,train_seconds,valid_ndcg@20," + string.Join(",", Metrics.Select(k => "test_" + k)) + "\n");
        foreach (var r in records.OrderBy(r => r.Method == RunSummary.TeacherMethod ? -1 : IndexOf(order, r.Method)).ThenBy(r => r.SeedIndex))
            csv.Append(CultureInfo.InvariantCulture,
                $"{r.Method},{r.SeedIndex},{r.Seed},{r.Dim},{r.Parameters},{r.BestEpoch},{r.EpochsRun},{r.TrainSeconds:F1},{r.Valid.GetValueOrDefault("ndcg@20"):F6},")
               .AppendJoin(',', Metrics.Select(k => r.Test.GetValueOrDefault(k).ToString("F6", CultureInfo.InvariantCulture))).Append('\n');
        AtomicFile.WriteText(Path.Combine(outDir, "results.csv"), csv.ToString());
        var json = new JsonObject
        {
            ["title"] = title,
            ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
            {
                ["method"] = r.Method, ["runs"] = r.Runs, ["parameters"] = r.Parameters,
                ["valid_ndcg@20"] = Math.Round(r.ValidNdcg20, 6),
                ["test"] = new JsonObject(Metrics.Select(k => KeyValuePair.Create(k, (JsonNode?)new JsonObject
                    { ["mean"] = Math.Round(r.Test[k].Mean, 6), ["std"] = Math.Round(r.Test[k].Std, 6) }))),
            }).ToArray()),
            ["failures"] = new JsonArray(failures.Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
        };
        AtomicFile.WriteText(Path.Combine(outDir, "results.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        ComparisonCharts.Write(outDir, title, rows, records, order);
        return md.ToString();
    }
}
